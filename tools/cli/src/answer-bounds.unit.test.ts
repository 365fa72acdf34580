import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliIo, runCli } from './cli.js';
import { EXIT } from './exit-codes.js';

/**
 * The CLI pointed at something that is not (or no longer) an honest admin API — a URL typo, a
 * compromised proxy: an answer too large to hold, one that never ends, pages that never run out. Each
 * ends in exit 7 with a message naming the bound, in bounded time and memory.
 */

const MiB = 1024 * 1024;
const tenant = { id: '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11', name: 'Acme', subdomain: 'acme' };

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function hostileApi(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Writes `total` bytes of a JSON string that never closes, then holds the connection open. */
function streamWithoutEnd(res: ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"data":"');
  const chunk = Buffer.alloc(64 * 1024, 'a');
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
  };
  pump();
}

async function run(argv: string[], url: string, extra: Partial<CliIo> & { env?: NodeJS.ProcessEnv } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const started = Date.now();
  const code = await runCli(argv, {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    stdin: async () => '',
    sleep: async () => {},
    ...extra,
    env: { VANTAGEEDGE_URL: url, VANTAGEEDGE_TOKEN: 'tok', VANTAGEEDGE_CONFIG: '/nonexistent', ...extra.env },
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), ms: Date.now() - started };
}

describe('an answer too large to hold', () => {
  it('stops reading at the bound and names it (a body without Content-Length)', async () => {
    const url = await hostileApi((_req, res) => streamWithoutEnd(res, 32 * MiB));
    const result = await run(['get', 'tenants'], url, { maxAnswerBytes: 1 * MiB });
    expect(result.code).toBe(EXIT.unavailable);
    expect(result.stderr).toContain('larger than 1 MiB');
  }, 10_000);

  it('refuses a Content-Length over the default 256 MiB before reading the body', async () => {
    const url = await hostileApi((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(300 * MiB) });
      res.write('{"data":[');
    });
    const result = await run(['get', 'tenants'], url);
    expect(result.code).toBe(EXIT.unavailable);
    expect(result.stderr).toContain('larger than 256 MiB');
  }, 10_000);

  it('bounds every page of a list together, and a list whose cursor comes back', async () => {
    let page = 0;
    const fat = await hostileApi((_req, res) => {
      page += 1;
      const data = Array.from({ length: 200 }, () => ({ ...tenant, name: 'x'.repeat(1000) }));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data, next_cursor: String(page) }));
    });
    const fatResult = await run(['get', 'tenants'], fat, { maxAnswerBytes: 1 * MiB });
    expect(fatResult.code).toBe(EXIT.unavailable);
    expect(fatResult.stderr).toContain('larger than 1 MiB');

    const looping = await hostileApi((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: [tenant], next_cursor: '7' }));
    });
    const loopResult = await run(['get', 'tenants'], looping);
    expect(loopResult.code).toBe(EXIT.unavailable);
    expect(loopResult.stderr).toContain('next_cursor');
  }, 10_000);
});

describe('an answer that never ends', () => {
  it('--timeout bounds headers and body together', async () => {
    const silent = await hostileApi(() => {}); // never answers
    const noHeaders = await run(['--timeout', '0.5', 'get', 'tenants'], silent);
    expect(noHeaders.code).toBe(EXIT.unavailable);
    expect(noHeaders.stderr).toContain('within 0.5 s (--timeout');
    expect(noHeaders.ms).toBeLessThan(5_000);

    const trickle = await hostileApi((_req, res) => streamWithoutEnd(res, 0));
    const noEnd = await run(['get', 'tenants'], trickle, { env: { VANTAGEEDGE_TIMEOUT: '0.5' } });
    expect(noEnd.code).toBe(EXIT.unavailable);
    expect(noEnd.stderr).toContain('within 0.5 s (--timeout');
    expect(noEnd.ms).toBeLessThan(5_000);
  }, 15_000);

  it('refuses a timeout that is not a positive number of seconds, before calling the API', async () => {
    for (const value of ['0', '-1', 'abc', '1e9']) {
      const result = await run(['--timeout', value, 'get', 'tenants'], 'http://127.0.0.1:9');
      expect(result.code).toBe(EXIT.usage);
      expect(result.stderr).toContain('--timeout');
    }
  });
});
