import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterEach, describe, expect, it } from 'vitest';
import { writeError } from '../pipeline/errors.js';
import { GatewayHttp2ServerResponse } from './gateway-http2-response.js';
import { GatewayServerResponse } from './gateway-server-response.js';

/**
 * The layer that writes every response to an HTTP/2 client drops the fields HTTP/2 forbids (node throws
 * on them), wherever they came from: set before the head or given to writeHead, in any case. And the
 * gateway's error answer never throws, whatever headers the response was left with.
 */
let server: Http2Server | Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function listen(listening: Http2Server | Server): Promise<string> {
  server = listening;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
}

describe('GatewayHttp2ServerResponse', () => {
  it('drops connection-specific fields, keeps te: trailers and every other header', async () => {
    const url = await listen(
      createHttp2Server({ Http2ServerResponse: GatewayHttp2ServerResponse }, (req, res) => {
        res.setHeader('Keep-Alive', 'timeout=5');
        res.setHeader('x-before', '1');
        if (req.url === '/implicit') {
          res.setHeader('upgrade', 'h2c');
          res.end('implicit');
          return;
        }
        res.writeHead(200, {
          Upgrade: 'h2c',
          'HTTP2-Settings': 'AAAA',
          te: 'gzip',
          'proxy-connection': 'keep-alive',
          'transfer-encoding': 'chunked',
          'x-given': '2',
        });
        res.end('explicit');
      }),
    );
    const session = http2Connect(url);
    try {
      const explicit = await http2Request(session, { path: '/', authority: 'a.test', timeoutMs: 3_000 });
      expect(explicit.status).toBe(200);
      expect(explicit.body).toBe('explicit');
      expect(explicit.headers['x-before']).toBe('1');
      expect(explicit.headers['x-given']).toBe('2');
      for (const name of [
        'keep-alive',
        'upgrade',
        'http2-settings',
        'te',
        'proxy-connection',
        'transfer-encoding',
      ])
        expect(explicit.headers[name], name).toBeUndefined();
      const implicit = await http2Request(session, {
        path: '/implicit',
        authority: 'a.test',
        timeoutMs: 3_000,
      });
      expect(implicit.status).toBe(200);
      expect(implicit.body).toBe('implicit');
      expect(implicit.headers['upgrade']).toBeUndefined();
    } finally {
      session.close();
    }
  });

  it('sends a field HTTP/2 allows once (Content-Type, ETag, Date, …) once, as node:http reads its repeated lines', async () => {
    // An HTTP/1.1 origin may repeat any line; undici hands the repeats over as an array, which node's
    // HTTP/2 response refuses for these fields (ERR_HTTP2_HEADER_SINGLE_VALUE) and, for Date, cannot even
    // remove again: the stream was reset without a status. node:http keeps the first line of some
    // (ETag, Location) and joins those of the others (Date, Content-Encoding); of Content-Type's, a
    // browser reads the last media type.
    const url = await listen(
      createHttp2Server({ Http2ServerResponse: GatewayHttp2ServerResponse }, (req, res) => {
        res.setHeader('date', ['Tue, 01 Dec 2026 10:00:00 GMT', 'Wed, 02 Dec 2026 10:00:00 GMT']);
        res.setHeader('etag', ['"a"', '"b"']);
        res.setHeader('x-list', ['1', '2']);
        if (req.url === '/implicit') {
          res.end('implicit');
          return;
        }
        if (req.url === '/pairs') {
          res.writeHead(200, [
            'Content-Encoding',
            'gzip',
            'content-type',
            'text/plain',
            'content-encoding',
            ' br',
            'Content-Type',
            'text/html',
          ]);
          res.end('pairs');
          return;
        }
        // As the proxy gives them: an origin's repeated lines are arrays, whatever node's types say.
        const given: Record<string, string[]> = {
          'Content-Type': ['text/plain', 'text/html'],
          'Content-Language': ['en', 'de '],
          location: ['/a', '/b'],
          'set-cookie': ['a=1', 'b=2'],
        };
        res.writeHead(200, given);
        res.end('explicit');
      }),
    );
    const session = http2Connect(url);
    try {
      const explicit = await http2Request(session, { path: '/', authority: 'a.test', timeoutMs: 3_000 });
      expect(explicit.status).toBe(200);
      expect(explicit.body).toBe('explicit');
      expect(explicit.headers['content-type']).toBe('text/html');
      expect(explicit.headers['location']).toBe('/a');
      expect(explicit.headers['content-language']).toBe('en, de');
      expect(explicit.headers['etag']).toBe('"a"');
      expect(explicit.headers['date']).toBe('Tue, 01 Dec 2026 10:00:00 GMT, Wed, 02 Dec 2026 10:00:00 GMT');
      expect(explicit.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(explicit.headers['x-list']).toBe('1, 2');
      const implicit = await http2Request(session, {
        path: '/implicit',
        authority: 'a.test',
        timeoutMs: 3_000,
      });
      expect(implicit.status).toBe(200);
      expect(implicit.body).toBe('implicit');
      expect(implicit.headers['etag']).toBe('"a"');
      const pairs = await http2Request(session, { path: '/pairs', authority: 'a.test', timeoutMs: 3_000 });
      expect(pairs.status).toBe(200);
      expect(pairs.headers['content-encoding']).toBe('gzip, br');
      expect(pairs.headers['content-type']).toBe('text/html');
    } finally {
      session.close();
    }
  });
});

describe('writeError', () => {
  it('answers a bare error when a header set before it cannot be sent (never throws)', async () => {
    const thrown: unknown[] = [];
    const url = await listen(
      createHttpServer({ ServerResponse: GatewayServerResponse }, (_req, res) => {
        res.setHeader('x-request-id', 'abc');
        res.setHeader('x-broken', 'a\u0000b'); // GatewayServerResponse checks it when the head is written
        try {
          writeError(res, 500, 'internal_error', 'the gateway failed to handle the request');
        } catch (error) {
          thrown.push(error);
          res.destroy();
        }
      }),
    );
    const answer = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
      (resolve, reject) => {
        const req = request(`${url}/`, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(thrown).toEqual([]);
    expect(answer.status).toBe(500);
    expect(answer.headers['x-request-id']).toBe('abc');
    expect(answer.headers['x-broken']).toBeUndefined();
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'internal_error', message: 'the gateway failed to handle the request' },
    });
  });
});
