import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_ATTEMPTS, retryAfterSeconds } from './api-client.js';
import { runCli } from './cli.js';
import { EXIT } from './exit-codes.js';

/**
 * What the CLI does with the admin API's "come back later" answers: 429 admin_rate_limited, 503
 * store_unavailable and 409 (Idempotency-Key still locked), each with Retry-After, and 409
 * idempotency_answer_lost. A fake admin API scripts the answers; the waits go to an injected sleep
 * (recorded, never slept), so no test waits for real.
 */

const TENANT = '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11';
const tenant = { id: TENANT, name: 'Acme', subdomain: 'acme', clerk_org_id: null };
const documentText = JSON.stringify({ format: 1, tenant: { id: TENANT, name: 'Acme', subdomain: 'acme' } });
const CHANGE = [{ resource: 'route', id: null, name: 'GET /a/*', change: 'added', fields: [] }];

interface Seen {
  method: string;
  path: string;
  key: string | undefined;
}

/** One scripted answer: status, headers, body (JSON), or 'drop' to close the connection unanswered. */
type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | 'drop';

const ok = (body: unknown): Answer => ({ status: 200, body });
const failure = (status: number, code: string, headers: Record<string, string> = {}): Answer => ({
  status,
  headers,
  body: { error: { code, message: `${code} (scripted)`, details: [] } },
});
const rateLimited = (seconds: string) => failure(429, 'admin_rate_limited', { 'retry-after': seconds });
const storeUnavailable = (seconds = '2') => failure(503, 'store_unavailable', { 'retry-after': seconds });

const servers: Array<{ close(): void; closeAllConnections(): void }> = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/**
 * A fake admin API: the tenant list and the tenant itself always answer; every other request takes the
 * next answer scripted for its `METHOD path` (the last one repeats).
 */
async function adminApi(script: Record<string, Answer[]>) {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume(); // the body is not looked at
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const key = req.headers['idempotency-key'];
      seen.push({ method: req.method ?? '', path, key: typeof key === 'string' ? key : undefined });
      res.setHeader('content-type', 'application/json');
      if (path === '/api/v1/tenants' && !script['GET /api/v1/tenants'])
        return res.end(JSON.stringify({ data: [tenant], next_cursor: null }));
      if (path === `/api/v1/tenants/${TENANT}` && req.method === 'GET')
        return res.end(JSON.stringify(tenant));
      const answers = script[`${req.method} ${path}`];
      const answer = answers && (answers.length > 1 ? answers.shift() : answers[0]);
      if (!answer) {
        res.statusCode = 404;
        return res.end(JSON.stringify({ error: { code: 'not_found', message: path } }));
      }
      if (answer === 'drop') return req.socket.destroy();
      res.statusCode = answer.status;
      for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const calls = (method: string, path: string) =>
    seen.filter((call) => call.method === method && call.path === path);
  return { url, seen, calls };
}

async function run(argv: string[], url: string, { now }: { now?: () => number } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const waits: number[] = [];
  const code = await runCli(argv, {
    env: {
      VANTAGEEDGE_URL: url,
      VANTAGEEDGE_TOKEN: 'admin-token',
      VANTAGEEDGE_CONFIG: '/nonexistent/x.json',
    },
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    stdin: async () => documentText,
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...(now ? { now } : {}),
  });
  return { code, out: out.join('\n'), err: err.join('\n'), waits };
}

const PLAN = `POST /api/v1/tenants/${TENANT}/config/plan`;
const APPLY = `POST /api/v1/tenants/${TENANT}/config/apply`;
const ROLLBACK = `POST /api/v1/tenants/${TENANT}/config/rollback`;
const planned = ok({ tenant_id: TENANT, version: '42', changes: CHANGE });
const applied = ok({ tenant_id: TENANT, version: '43', position: '43', changes: CHANGE });
const rolledBack = ok({
  tenant_id: TENANT,
  version: '44',
  position: '44',
  to_position: '40',
  changes: CHANGE,
});

describe('the CLI waits Retry-After and sends the same request again', () => {
  it('apply: 429 on the plan, 503 store_unavailable on the apply — waits each Retry-After, same key', async () => {
    const api = await adminApi({
      [PLAN]: [rateLimited('3'), planned],
      [APPLY]: [storeUnavailable('2'), applied],
    });
    const result = await run(['apply', '-f', '-'], api.url);
    expect(result.code, result.err).toBe(EXIT.ok);
    expect(result.waits).toEqual([3000, 2000]);
    expect(result.out).toContain('Applied 1 change to acme: config version 43 (event position 43).');
    expect(result.err).toContain('429 admin_rate_limited');
    expect(result.err).toContain('retrying in 3 s (attempt 2 of 5)');
    expect(result.err).toContain('503 store_unavailable');
    expect(result.err).toContain('retrying in 2 s (attempt 2 of 5, same Idempotency-Key)');
    const applies = api.calls('POST', `/api/v1/tenants/${TENANT}/config/apply`);
    expect(applies).toHaveLength(2);
    expect(applies[0]?.key).toMatch(/^vantageedge-apply-[0-9a-f]{64}$/);
    expect(applies[1]?.key).toBe(applies[0]?.key);
  });

  it('apply: 409 while the key is locked waits its Retry-After; 409 idempotency_answer_lost is success', async () => {
    const api = await adminApi({
      [PLAN]: [planned],
      [APPLY]: [
        storeUnavailable('2'),
        failure(409, 'conflict', { 'retry-after': '7' }),
        failure(409, 'idempotency_answer_lost', { 'x-event-position': '1234' }),
      ],
    });
    const result = await run(['apply', '-f', '-'], api.url);
    expect(result.code, result.err).toBe(EXIT.ok);
    expect(result.waits).toEqual([2000, 7000]);
    expect(result.out).toContain('Applied to acme (event position 1234)');
    expect(result.out).toContain('lost its answer');
    const keys = api.calls('POST', `/api/v1/tenants/${TENANT}/config/apply`).map((call) => call.key);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);

    // -o json says so too; with --wait-for-rollout the rollout was not waited for: exit 6.
    const waited = await adminApi({
      [PLAN]: [planned],
      [APPLY]: [failure(409, 'idempotency_answer_lost', { 'x-event-position': '99' })],
    });
    const json = await run(['-o', 'json', 'apply', '-f', '-', '--wait-for-rollout', '30s'], waited.url);
    expect(json.code, json.err).toBe(EXIT.rolloutPending);
    expect(JSON.parse(json.out)).toEqual({
      tenant_id: TENANT,
      applied: true,
      answer_lost: true,
      position: '99',
    });
  });

  it('rollback sends an Idempotency-Key, one per run, the same on its retries', async () => {
    const api = await adminApi({ [ROLLBACK]: [storeUnavailable('2'), rateLimited('1'), rolledBack] });
    const first = await run(['rollback', '-t', 'acme', '--to-position', '40'], api.url);
    expect(first.code, first.err).toBe(EXIT.ok);
    expect(first.waits).toEqual([2000, 1000]);
    expect(first.out).toContain('Rolled acme back to position 40');
    const second = await run(['rollback', '-t', 'acme', '--to-position', '40'], api.url);
    expect(second.code, second.err).toBe(EXIT.ok);
    const keys = api.calls('POST', `/api/v1/tenants/${TENANT}/config/rollback`).map((call) => call.key);
    expect(keys).toHaveLength(4);
    expect(keys[0]).toMatch(/^vantageedge-rollback-[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toBe(keys[0]);
    expect(keys[3]).not.toBe(keys[0]);

    const lost = await adminApi({
      [ROLLBACK]: [failure(409, 'idempotency_answer_lost', { 'x-event-position': '77' })],
    });
    const reported = await run(['rollback', '-t', 'acme', '--to-position', '40'], lost.url);
    expect(reported.code, reported.err).toBe(EXIT.ok);
    expect(reported.out).toContain('(event position 77)');
  });

  it('reads wait too: get on 429 and on 503 store_unavailable', async () => {
    const api = await adminApi({
      'GET /api/v1/tenants': [
        rateLimited('4'),
        storeUnavailable('2'),
        ok({ data: [tenant], next_cursor: null }),
      ],
    });
    const result = await run(['get', 'tenants'], api.url);
    expect(result.code, result.err).toBe(EXIT.ok);
    expect(result.waits).toEqual([4000, 2000]);
    expect(result.out).toContain('acme');
  });

  it('reads a Retry-After date against the injected clock', async () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    const api = await adminApi({
      'GET /api/v1/tenants': [
        rateLimited('Tue, 01 Dec 2026 10:00:05 GMT'),
        ok({ data: [tenant], next_cursor: null }),
      ],
    });
    const result = await run(['get', 'tenants'], api.url, { now: () => now });
    expect(result.code, result.err).toBe(EXIT.ok);
    expect(result.waits).toEqual([5000]);
    expect(retryAfterSeconds('12', now)).toBe(12);
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds('Tue, 01 Dec 2026 09:00:00 GMT', now)).toBe(0);
  });
});

describe('the waits are bounded', () => {
  it(`gives up after ${MAX_ATTEMPTS} attempts with exit 7 (429 is not bad usage)`, async () => {
    const api = await adminApi({ [PLAN]: [rateLimited('10')] });
    const result = await run(['apply', '-f', '-'], api.url);
    expect(result.code).toBe(EXIT.unavailable);
    expect(result.waits).toEqual([10_000, 10_000, 10_000, 10_000]);
    expect(api.calls('POST', `/api/v1/tenants/${TENANT}/config/plan`)).toHaveLength(MAX_ATTEMPTS);
    expect(result.err).toContain(`gave up after ${MAX_ATTEMPTS} attempts`);
  });

  it('does not wait longer than 30 s: a longer Retry-After is reported at once', async () => {
    const api = await adminApi({ [PLAN]: [planned], [APPLY]: [rateLimited('120')] });
    const result = await run(['apply', '-f', '-'], api.url);
    expect(result.code).toBe(EXIT.unavailable);
    expect(result.waits).toEqual([]);
    expect(api.calls('POST', `/api/v1/tenants/${TENANT}/config/apply`)).toHaveLength(1);
    expect(result.err).toContain('asks to retry in 120 s, longer than the CLI waits: 30 s');
  });
});

describe('what is not retried', () => {
  it('a 5xx without Retry-After (500 internal) or a 409 without one: one attempt, no wait', async () => {
    const api = await adminApi({ [PLAN]: [planned], [APPLY]: [failure(500, 'internal'), applied] });
    const result = await run(['apply', '-f', '-'], api.url);
    expect(result.code).toBe(EXIT.unavailable);
    expect(result.err).toContain('500 internal');
    expect(result.waits).toEqual([]);
    expect(api.calls('POST', `/api/v1/tenants/${TENANT}/config/apply`)).toHaveLength(1);

    // A real conflict (no Retry-After: not a locked key) is reported at once: exit 5.
    const conflict = await adminApi({ [PLAN]: [planned], [APPLY]: [failure(409, 'conflict'), applied] });
    const refused = await run(['apply', '-f', '-'], conflict.url);
    expect(refused.code).toBe(EXIT.conflict);
    expect(refused.waits).toEqual([]);
    expect(conflict.calls('POST', `/api/v1/tenants/${TENANT}/config/apply`)).toHaveLength(1);
  });

  it('a command whose connection broke is sent again after a back-off, with its key', async () => {
    const api = await adminApi({ [PLAN]: [planned], [APPLY]: ['drop', applied] });
    const result = await run(['apply', '-f', '-'], api.url);
    expect(result.code, result.err).toBe(EXIT.ok);
    expect(result.waits).toEqual([1000]);
    expect(result.err).toContain('cannot reach the admin API');
    const keys = api.calls('POST', `/api/v1/tenants/${TENANT}/config/apply`).map((call) => call.key);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });
});
