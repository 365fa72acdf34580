import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from './exit-codes.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

/**
 * `get audit` of all the caller's tenants: the admin API leaves out the entries of a tenant whose config
 * read budget is spent and names it in the page's omitted_tenants. A table that only showed the others
 * would read as the tenant having changed nothing.
 */
afterEach(closeStandInAdminApis);

const SHOWN = '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11';
const LEFT_OUT = '0f3a1c9e-5b7d-4e2f-8a6c-1d9e7b5a3c2f';

describe('get audit over every tenant', () => {
  it('says on stderr which tenants the admin API left out, and when to read them', async () => {
    const entry = {
      position: '12',
      event_id: '0b6a7f5e-1d2c-4e3b-9a8f-7c6d5e4f3a2b',
      event_type: 'RouteCreated',
      resource_type: 'route',
      resource_id: 'r1',
      tenant_id: SHOWN,
      actor: 'alice@example.com',
      occurred_at: '2026-01-01T00:00:00.000Z',
    };
    const url = await serveStandInAdminApi((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          data: [entry],
          next_cursor: null,
          omitted_tenants: [
            {
              tenant_id: LEFT_OUT,
              code: 'admin_rate_limited',
              field: 'tenant_config_read_bytes_per_minute',
              retry_after_seconds: 7,
            },
          ],
        }),
      );
    });
    const result = await runCliAgainst(['get', 'audit'], url, { sleep: async () => {} });
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toContain('RouteCreated');
    expect(result.stderr).toContain(LEFT_OUT);
    expect(result.stderr).toContain('7 s');
    expect(result.stderr).toContain(`--tenant ${LEFT_OUT}`);
  });
});
