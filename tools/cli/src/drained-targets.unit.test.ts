import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from './exit-codes.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

/** `get origins` tells a drained target (weight 0: kept, sent no request) from the ones serving. */

afterEach(closeStandInAdminApis);

function adminApiListing(origins: unknown[]): Promise<string> {
  return serveStandInAdminApi((req, res) => {
    res.setHeader('content-type', 'application/json');
    if ((req.url ?? '').startsWith('/api/v1/origins?')) {
      res.end(JSON.stringify({ data: origins, next_cursor: null }));
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ error: { code: 'not_found', message: 'no such resource' } }));
  });
}

describe('vantageedge get origins', () => {
  it('marks a target of weight 0 as drained', async () => {
    const url = await adminApiListing([
      {
        id: 'e3d7f6c4-3333-4d6d-8e8e-444455556666',
        name: 'blue-green',
        targets: [
          { url: 'https://blue.example.com', weight: 0 },
          { url: 'https://green.example.com', weight: 3 },
        ],
        load_balancing: { algorithm: 'round_robin' },
      },
    ]);
    const { code, stdout: listed } = await runCliAgainst(['get', 'origins'], url);
    expect(code).toBe(EXIT.ok);
    expect(listed).toContain('https://blue.example.com (drained)');
    expect(listed).toContain('https://green.example.com');
    expect(listed).not.toContain('https://green.example.com (drained)');
  });
});
