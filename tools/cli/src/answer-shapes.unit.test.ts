import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from './exit-codes.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

/**
 * The CLI pointed at something that answers a success status with a body of another shape than the
 * admin API's (another service behind the URL, another version, a proxy's page): every command that
 * reads such a body reports it in one line and exits 7, never with a stack trace.
 */

const TENANT = { id: '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11', name: 'Acme', subdomain: 'acme' };
const T = TENANT.id;
const DOCUMENT = JSON.stringify({ tenant: { id: T }, routes: [] });

afterEach(closeStandInAdminApis);

/** An admin API whose answers are right except `odd`: path → the body answered there with 200. */
async function api(odd: Record<string, unknown>): Promise<string> {
  const honest: Record<string, unknown> = {
    [`GET /api/v1/tenants/${T}`]: TENANT,
    'GET /api/v1/tenants': { data: [TENANT], next_cursor: null },
    [`GET /api/v1/tenants/${T}/domains`]: { data: [], next_cursor: null },
    [`POST /api/v1/tenants/${T}/config/plan`]: {
      tenant_id: T,
      version: '3',
      changes: [{ resource: 'route', id: null, name: 'r', change: 'added', fields: [] }],
    },
  };
  return serveStandInAdminApi((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
      const body = key in odd ? odd[key] : honest[key];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body ?? null));
    });
  });
}

const run = (argv: string[], url: string) =>
  runCliAgainst(argv, url, { stdin: async () => DOCUMENT, sleep: async () => {} });

/** Bodies of the wrong shape: nothing, a string, an object where a list is, a list where an object is. */
const ODD_BODIES: Record<string, unknown> = {
  'no body': '',
  null: null,
  'a string': 'Welcome to nginx!',
  'a number': 42,
  'an empty object': {},
  'a list': [1, 2],
  'data an object': { data: { id: 1 }, next_cursor: null },
  'data of nulls': { data: [null], next_cursor: null },
  'data of strings': { data: ['x'], next_cursor: null },
  'data of empty objects': { data: [{}], next_cursor: null },
  'data of odd fields': {
    data: [{ id: 1, methods: 'GET', targets: { url: 'x' }, rate_limit: 'fast', cache_policy: 7 }],
    next_cursor: null,
  },
};

/** Each command that reads a success body, and the request whose answer it reads. */
const COMMANDS: Array<{ argv: string[]; at: string }> = [
  { argv: ['get', 'tenants'], at: 'GET /api/v1/tenants' },
  { argv: ['get', 'routes', '-t', T], at: 'GET /api/v1/routes' },
  { argv: ['get', 'origins', '-t', T], at: 'GET /api/v1/origins' },
  { argv: ['get', 'keys', '-t', T], at: 'GET /api/v1/api-keys' },
  { argv: ['get', 'route', 'r1'], at: 'GET /api/v1/routes/r1' },
  { argv: ['get', 'origin', 'o1'], at: 'GET /api/v1/origins/o1' },
  { argv: ['get', 'rollout', '-t', T], at: `GET /api/v1/tenants/${T}/rollout` },
  { argv: ['get', 'audit', '-t', T], at: 'GET /api/v1/audit-log' },
  { argv: ['get', 'tenants', '-t', 'acme'], at: 'GET /api/v1/tenants' },
  { argv: ['get', 'tenants', '-t', T], at: `GET /api/v1/tenants/${T}` },
  { argv: ['dump', '-t', T], at: `GET /api/v1/tenants/${T}/config/document` },
  { argv: ['history', '-t', T], at: `GET /api/v1/tenants/${T}/config/history` },
  { argv: ['diff', '-f', '-', '-t', T], at: `POST /api/v1/tenants/${T}/config/plan` },
  { argv: ['apply', '-f', '-', '-t', T, '--dry-run'], at: `POST /api/v1/tenants/${T}/config/plan` },
  { argv: ['apply', '-f', '-', '-t', T], at: `POST /api/v1/tenants/${T}/config/apply` },
  { argv: ['rollback', '-t', T, '--to-position', '5'], at: `POST /api/v1/tenants/${T}/config/rollback` },
  {
    argv: ['rollback', '-t', T, '--to-position', '5', '--dry-run'],
    at: `POST /api/v1/tenants/${T}/config/rollback`,
  },
  { argv: ['explain', 'GET', 'https://acme.vantageedge.dev/'], at: 'GET /api/v1/tenants' },
  { argv: ['explain', 'GET', 'https://shop.example.com/'], at: `GET /api/v1/tenants/${T}/domains` },
];

describe('a success answer of an unexpected shape', () => {
  for (const { argv, at } of COMMANDS) {
    it(`${argv.join(' ')}: one line and exit 7 whatever ${at} answers`, async () => {
      for (const [name, body] of Object.entries(ODD_BODIES)) {
        // Some odd bodies read as an answer with nothing in it (an empty list): those may succeed.
        const result = await run(argv, await api({ [at]: body }));
        const report = `${name}: ${result.stderr}`;
        expect(result.stderr, report).not.toMatch(/\n\s+at |TypeError|Cannot read/);
        if (result.code === EXIT.ok) continue;
        expect(result.code, report).toBe(EXIT.unavailable);
        expect(result.stderr.split('\n'), report).toHaveLength(1);
        expect(result.stderr, report).toMatch(/^vantageedge: the answer of .* is not /);
      }
    });
  }
});

// Regression: a field a table only shows was required to be present, so `get audit` refused every
// answer of the admin API, whose audit entries have no summary (only config history entries do).
describe('an answer of the admin API with only the fields its OpenAPI requires', () => {
  it('get audit lists an audit entry without a summary', async () => {
    const entry = {
      position: '12',
      event_id: '0b6a7f5e-1d2c-4e3b-9a8f-7c6d5e4f3a2b',
      event_type: 'RouteCreated',
      resource_type: 'route',
      resource_id: 'r1',
      tenant_id: T,
      actor: 'alice@example.com',
      occurred_at: '2026-01-01T00:00:00.000Z',
    };
    const result = await run(
      ['get', 'audit', '-t', T],
      await api({ 'GET /api/v1/audit-log': { data: [entry], next_cursor: null } }),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toContain('RouteCreated');
    expect(result.stdout).toContain('alice@example.com');
  });
});
