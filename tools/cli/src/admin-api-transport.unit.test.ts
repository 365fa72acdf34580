import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from './exit-codes.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

/**
 * What the CLI sends where: the token and what a command carries (a tenant document, the credentials of
 * a request to explain) go to the admin API URL it was given, and nowhere else.
 */

afterEach(closeStandInAdminApis);

const TENANT = { id: '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11', name: 'Acme', subdomain: 'acme' };
const CLIENT_KEY = 've_live_planted-client-key-0123456789';

interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

async function recorded(req: IncomingMessage, into: Received[]): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  into.push({
    method: req.method ?? '',
    url: req.url ?? '',
    authorization: req.headers.authorization,
    body: Buffer.concat(chunks).toString('utf8'),
  });
}

/** Another host (another origin: its own port) that answers whatever reaches it as the admin API would. */
async function elsewhere(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const url = await serveStandInAdminApi(async (req, res) => {
    await recorded(req, received);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ data: [{ ...TENANT, name: 'Planted by another host' }], next_cursor: null }));
  });
  return { url, received };
}

describe('a redirect from the admin API', () => {
  it('is not followed: what a command carries never reaches the other host, and its answer is not shown', async () => {
    const other = await elsewhere();
    const api = await serveStandInAdminApi(async (req, res) => {
      await recorded(req, []);
      if (req.method === 'GET' && req.url === `/api/v1/tenants/${TENANT.id}`) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(TENANT));
        return;
      }
      // 307 and 308 keep the method and the body: a follower posts the request to explain, keys and all.
      res.statusCode = req.method === 'GET' ? 302 : 307;
      res.setHeader('location', `${other.url}/collect${req.url}`);
      res.end();
    });

    const explained = await runCliAgainst(
      [
        'explain',
        'GET',
        'https://acme.vantageedge.dev/api',
        '-t',
        TENANT.id,
        '-H',
        `x-api-key: ${CLIENT_KEY}`,
      ],
      api,
    );
    const listed = await runCliAgainst(['get', 'tenants'], api);

    expect(other.received).toEqual([]);
    for (const result of [explained, listed]) {
      expect(result.code).toBe(EXIT.unavailable);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain(`redirects to ${other.url}/collect/api/v1/`);
      expect(result.stderr).toContain('the CLI follows no redirect');
      expect(result.stderr).not.toContain('admin-token');
    }
  });
});

describe('an admin API URL over plain http', () => {
  it('is refused for a host that is not this machine, before the token is sent', async () => {
    for (const url of ['http://admin.example.com', 'http://10.0.0.8:8080', 'http://[2001:db8::1]:8080']) {
      const read = await runCliAgainst(['get', 'tenants'], url);
      expect(read.code).toBe(EXIT.usage);
      expect(read.stderr).toContain(`${url} is plain http`);
      const login = await runCliAgainst(['login', '--url', url, '--token-stdin'], url, {
        stdin: async () => 'planted.admin.token',
        env: { VANTAGEEDGE_URL: '' },
      });
      expect(login.code).toBe(EXIT.usage);
      expect(login.stderr).toContain('is plain http');
      expect(`${read.stderr}${login.stderr}`).not.toContain('planted.admin.token');
    }
  });

  it('is used for this machine (a loopback address or localhost), and for any host when asked to', async () => {
    const api = await serveStandInAdminApi((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: [TENANT], next_cursor: null }));
    });
    const port = new URL(api).port;
    for (const url of [api, `http://localhost:${port}`]) {
      const result = await runCliAgainst(['get', 'tenants'], url);
      expect(result.code, result.stderr).toBe(EXIT.ok);
      expect(result.stdout).toContain('acme');
    }
    const allowed = await runCliAgainst(['get', 'tenants'], 'http://admin.example.invalid', {
      env: { VANTAGEEDGE_ALLOW_PLAIN_HTTP: '1' },
    });
    // Sent (and unreachable), not refused for its scheme.
    expect(allowed.code).toBe(EXIT.unavailable);
    expect(allowed.stderr).toContain('cannot reach the admin API at http://admin.example.invalid');
  });

  it('is refused for a scheme the admin API is not served over', async () => {
    const result = await runCliAgainst(['get', 'tenants'], 'ftp://admin.example.com');
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain('ftp://admin.example.com is not an http(s) URL');
  });
});
