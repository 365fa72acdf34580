import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { EXIT } from './exit-codes.js';

/** `get origins` tells a drained target (weight 0: kept, sent no request) from the ones serving. */

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function adminApiListing(origins: unknown[]): Promise<string> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if ((req.url ?? '').startsWith('/api/v1/origins?')) {
      res.end(JSON.stringify({ data: origins, next_cursor: null }));
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ error: { code: 'not_found', message: 'no such resource' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
    const out: string[] = [];
    const code = await runCli(['get', 'origins'], {
      env: {
        VANTAGEEDGE_URL: url,
        VANTAGEEDGE_TOKEN: 'admin-token',
        VANTAGEEDGE_CONFIG: '/nonexistent/x.json',
      },
      stdout: (text) => out.push(text),
      stderr: () => {},
      stdin: async () => '',
    });
    expect(code).toBe(EXIT.ok);
    const listed = out.join('\n');
    expect(listed).toContain('https://blue.example.com (drained)');
    expect(listed).toContain('https://green.example.com');
    expect(listed).not.toContain('https://green.example.com (drained)');
  });
});
