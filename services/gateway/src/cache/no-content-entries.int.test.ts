import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayHttp2ServerResponse } from '../http/gateway-http2-response.js';
import { GatewayServerResponse } from '../http/gateway-server-response.js';
import type { CacheEntry } from './cache-entry.js';
import { memoryResponseCache } from './testing/memory-response-cache.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

/**
 * Regression: an entry stored with a body its status cannot carry (a 205's, stored before the proxy
 * dropped it, possibly by another replica in the shared store) was served with it: HTTP/2 streams were
 * reset (node ends a 205 stream at its head) and HTTP/1.1 clients got the content. A stored 204 went
 * out with Content-Length: 0, which a 204 must not have.
 */
const cache = memoryResponseCache();

const entry = (status: number, body: string) => testCacheEntry({ status, body: Buffer.from(body) });

const ENTRIES: Record<string, CacheEntry> = { '/205': entry(205, 'hello'), '/204': entry(204, '') };

let server: Http2Server | Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function listen(listening: Http2Server | Server): Promise<number> {
  server = listening;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  return (listening.address() as AddressInfo).port;
}

/** One HTTP/1.1 request and a second on the same connection: everything received. */
function twoOnOneConnection(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(received));
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: a.test\r\n\r\nGET /204 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`,
    );
  });
}

describe('a stored entry whose status has no content', () => {
  it('is served to HTTP/2 clients without the body it was stored with', async () => {
    const port = await listen(
      createHttp2Server({ Http2ServerResponse: GatewayHttp2ServerResponse }, (req, res) => {
        cache.writeEntry(res as never, ENTRIES[req.url]!, 'HIT', 'GET');
      }),
    );
    const session = http2Connect(`http://127.0.0.1:${port}`);
    try {
      const reset = await http2Request(session, { path: '/205', authority: 'a.test', timeoutMs: 3_000 });
      expect(reset.status).toBe(205);
      expect(reset.body).toBe('');
      const none = await http2Request(session, { path: '/204', authority: 'a.test', timeoutMs: 3_000 });
      expect(none.status).toBe(204);
      expect(none.headers['content-length']).toBeUndefined();
    } finally {
      session.close();
    }
  });

  it('is served to HTTP/1.1 clients with Content-Length 0 (205) or none (204), and no body', async () => {
    const port = await listen(
      createHttpServer({ ServerResponse: GatewayServerResponse }, (req, res) => {
        cache.writeEntry(res, ENTRIES[req.url!]!, 'HIT', 'GET');
      }),
    );
    const received = await twoOnOneConnection(port, '/205');
    const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
    expect(first!.toLowerCase()).toMatch(/^http\/1\.1 205 /);
    expect(first!.toLowerCase()).toContain('\r\ncontent-length: 0\r\n');
    expect(first!.endsWith('\r\n\r\n')).toBe(true); // no body
    expect(second!.toLowerCase()).toMatch(/^http\/1\.1 204 /);
    expect(second!.toLowerCase()).not.toContain('content-length');
  });
});
