import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckedHeader,
  GatewayServerResponse,
  setCheckedHeaders,
  writeLowerCaseHead,
} from './gateway-server-response.js';

/**
 * The gateway's HTTP/1.1 response keeps headers set before the head in its own object; what a client
 * receives must be exactly what node's own response would send for the same calls.
 */
let server: Server | undefined;

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function answer(
  respond: (res: ServerResponse) => void,
  onFirstChunk?: () => void,
): Promise<{ status: number; headers: Record<string, string>; cookies: string[]; body: string }> {
  server = createServer({ ServerResponse: GatewayServerResponse }, (_req: IncomingMessage, res) =>
    respond(res),
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  const headers = Object.fromEntries(response.headers);
  for (const name of ['date', 'connection', 'keep-alive']) delete headers[name];
  delete headers['set-cookie'];
  const cookies = response.headers.getSetCookie();
  let body = '';
  if (response.body === null) return { status: response.status, headers, cookies, body };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    body += chunk.value;
    onFirstChunk?.();
  }
  return { status: response.status, headers, cookies, body };
}

describe('the gateway HTTP/1.1 response', () => {
  it('sends headers set before writeHead with the ones given to it, which win on the same name', async () => {
    const sent = await answer((res) => {
      res.setHeader('X-Request-Id', 'r1');
      res.setHeader('Vary', 'Origin');
      res.setHeader('content-type', 'text/plain');
      res.writeHead(201, { 'Content-Type': 'application/json', 'content-length': '2' });
      res.end('{}');
    });
    expect(sent).toEqual({
      status: 201,
      headers: {
        'x-request-id': 'r1',
        vary: 'Origin',
        'content-type': 'application/json',
        'content-length': '2',
      },
      cookies: [],
      body: '{}',
    });
  });

  it('answers get/has/remove/append and the name list like node, case-insensitively', async () => {
    const seen: unknown[] = [];
    const sent = await answer((res) => {
      res.setHeader('X-Cache', 'MISS');
      res.appendHeader('set-cookie', 'a=1');
      res.appendHeader('Set-Cookie', ['b=2']);
      seen.push(res.getHeader('x-cache'), res.hasHeader('X-CACHE'), res.getHeaderNames().sort());
      res.removeHeader('x-cache');
      seen.push(res.hasHeader('x-cache'), res.getHeaders());
      res.statusCode = 204;
      res.end(); // an implicit head takes the waiting headers too
    });
    expect(seen).toEqual(['MISS', true, ['set-cookie', 'x-cache'], false, { 'set-cookie': ['a=1', 'b=2'] }]);
    expect(sent.status).toBe(204);
    expect(sent.cookies).toEqual(['a=1', 'b=2']);
    expect(sent.headers['x-cache']).toBeUndefined();
  });

  it('refuses a header value node refuses, when the head is written, and a header after it', async () => {
    const errors: string[] = [];
    const sent = await answer((res) => {
      res.setHeader('x-bad', 'line\nbreak');
      try {
        res.writeHead(200);
      } catch (error) {
        errors.push((error as { code: string }).code);
        res.removeHeader('x-bad');
        res.writeHead(502, { 'content-length': '0' });
      }
      try {
        res.setHeader('x-late', '1');
      } catch (error) {
        errors.push((error as { code: string }).code);
      }
      res.end();
    });
    expect(errors).toEqual(['ERR_INVALID_CHAR', 'ERR_HTTP_HEADERS_SENT']);
    expect(sent.status).toBe(502);
  });

  it('ends the response at the end of the turn, reporting it ended from the call', async () => {
    const seen: boolean[] = [];
    const sent = await answer((res) => {
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
      seen.push(res.writableEnded, res.writableFinished);
      setImmediate(() => seen.push(res.writableFinished));
    });
    expect(sent.body).toBe('ok');
    expect(seen).toEqual([true, false, true]);
  });

  it('streams the writes of later turns as they come (only the first turn is held)', async () => {
    let firstArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      firstArrived = resolve;
    });
    const sent = await answer((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      // The end waits for the client to have the first chunk: held forever, this would never end.
      void arrived.then(() => res.end('last'));
    }, firstArrived);
    expect(sent.body).toBe('first;last');
  });

  it('sends header names as they were spelled, the last spelling of a name winning', async () => {
    server = createServer({ ServerResponse: GatewayServerResponse }, (_req, res) => {
      res.setHeader('X-Cache', 'MISS');
      res.setHeader('RateLimit-Policy', '"route";q=1;w=1');
      res.setHeader('content-type', 'text/plain');
      res.writeHead(200, { 'Content-Type': 'application/json', 'content-length': '2' });
      res.end('{}');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const rawHeaders = await new Promise<string[]>((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/' }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.rawHeaders));
      }).on('error', reject);
    });
    const names = rawHeaders.filter((_, i) => i % 2 === 0);
    expect(names).toEqual(
      expect.arrayContaining(['X-Cache', 'RateLimit-Policy', 'Content-Type', 'content-length']),
    );
    expect(names.filter((name) => name.toLowerCase() === 'content-type')).toEqual(['Content-Type']);
  });

  it('sends checked headers once each, replaced by a header of the same name set or given later', async () => {
    const vary = new CheckedHeader('Vary', 'Origin');
    const allowOrigin = new CheckedHeader('access-control-allow-origin', 'https://app.example');
    const seen: unknown[] = [];
    const rawHeaders = await rawAnswer((res) => {
      setCheckedHeaders(res, [vary]);
      setCheckedHeaders(res, [allowOrigin]);
      setCheckedHeaders(res, [new CheckedHeader('x-served-by', 'first')]);
      res.setHeader('X-Served-By', 'second');
      setCheckedHeaders(res, [new CheckedHeader('x-removed', 'yes')]);
      res.removeHeader('X-Removed');
      seen.push(
        res.getHeader('vary'),
        res.hasHeader('Access-Control-Allow-Origin'),
        res.getHeader('x-removed'),
      );
      res.writeHead(200, { vary: 'Accept-Encoding', 'content-length': '2' });
      res.end('ok');
    });
    expect(seen).toEqual(['Origin', true, undefined]);
    const lines = pairs(rawHeaders).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    expect(lines).toEqual([
      ['access-control-allow-origin', 'https://app.example'],
      ['X-Served-By', 'second'],
      ['vary', 'Accept-Encoding'],
      ['content-length', '2'],
    ]);
  });

  it('writes a lower-case head (a proxied one) with the checked headers it does not replace, once each', async () => {
    const rawHeaders = await rawAnswer((res) => {
      setCheckedHeaders(res, [
        new CheckedHeader('Vary', 'Origin'),
        new CheckedHeader('access-control-allow-origin', 'https://app.example'),
        new CheckedHeader('x-policy', 'gateway'),
      ]);
      writeLowerCaseHead(res, 200, { 'x-policy': 'origin', 'content-length': '2' });
      res.end('ok');
    });
    const lines = pairs(rawHeaders).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    expect(lines).toEqual([
      ['Vary', 'Origin'],
      ['access-control-allow-origin', 'https://app.example'],
      ['x-policy', 'origin'],
      ['content-length', '2'],
    ]);
  });

  it('writes checked headers given with a lower-case head once each, in place of those set before of the same names', async () => {
    const rawHeaders = await rawAnswer((res) => {
      setCheckedHeaders(res, [new CheckedHeader('vary', 'Origin'), new CheckedHeader('x-policy', 'cors')]);
      res.setHeader('X-Cache', 'MISS');
      writeLowerCaseHead(res, 200, { 'content-length': '2' }, [
        new CheckedHeader('x-policy', 'route'),
        new CheckedHeader('x-cache', 'route'),
        new CheckedHeader('x-served-by', 'vantageedge'),
      ]);
      res.end('ok');
    });
    const lines = pairs(rawHeaders).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    expect(lines).toEqual([
      ['vary', 'Origin'],
      ['x-policy', 'route'],
      ['x-cache', 'route'],
      ['x-served-by', 'vantageedge'],
      ['content-length', '2'],
    ]);
  });

  it('writes checked headers given with a lower-case head when none was set before, as node writes them', async () => {
    const given = { 'content-type': 'text/plain', 'content-length': '2' };
    const prepared = await rawAnswer((res) => {
      writeLowerCaseHead(res, 200, { ...given }, [new CheckedHeader('x-served-by', 'vantageedge')]);
      res.end('ok');
    });
    await new Promise((resolve) => server!.close(resolve));
    const stock = await rawAnswer((res) => {
      res.writeHead(200, { 'x-served-by': 'vantageedge', ...given });
      res.end('ok');
    });
    const lines = (raw: string[]) => pairs(raw).filter(([name]) => name !== 'Date');
    expect(lines(prepared)).toEqual(lines(stock));
  });

  it('does not send the checked headers given with a head node refused on the error answered instead', async () => {
    const rawHeaders = await rawAnswer((res) => {
      setCheckedHeaders(res, [new CheckedHeader('vary', 'Origin')]);
      try {
        writeLowerCaseHead(res, 200, { 'x-bad': 'line\nbreak' }, [new CheckedHeader('x-served-by', 'on')]);
      } catch {
        res.statusCode = 502;
        res.end();
      }
    });
    const lines = pairs(rawHeaders).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    expect(lines).toEqual([
      ['vary', 'Origin'],
      ['Content-Length', '0'],
    ]);
  });

  it('writes a lower-case head after headers set as usual too, in the order they were set', async () => {
    const rawHeaders = await rawAnswer((res) => {
      res.setHeader('X-Cache', 'MISS');
      setCheckedHeaders(res, [new CheckedHeader('vary', 'Origin')]);
      writeLowerCaseHead(res, 200, { 'x-cache': 'origin-said', 'content-length': '2' });
      res.end('ok');
    });
    const lines = pairs(rawHeaders).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    expect(lines).toEqual([
      ['vary', 'Origin'],
      ['x-cache', 'origin-said'],
      ['content-length', '2'],
    ]);
  });

  it('keeps checked headers on an implicit head and on a second head after a refused one', async () => {
    const rawHeaders = await rawAnswer((res) => {
      setCheckedHeaders(res, [new CheckedHeader('x-policy', 'on')]);
      res.setHeader('x-bad', 'line\nbreak');
      try {
        res.writeHead(200);
      } catch {
        res.removeHeader('x-bad');
      }
      res.statusCode = 503;
      res.end();
    });
    const lines = pairs(rawHeaders).filter(([name]) => name.toLowerCase().startsWith('x-'));
    expect(lines).toEqual([['x-policy', 'on']]);
  });

  it('sets a checked header with setHeader on any other response (HTTP/2, stock node)', async () => {
    server = createServer((_req, res) => {
      setCheckedHeaders(res, [new CheckedHeader('x-policy', 'on')]);
      res.end();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(response.headers.get('x-policy')).toBe('on');
  });

  it('sends checked headers set on many responses as set, whatever one response changed', async () => {
    const shared = [
      new CheckedHeader('Vary', 'Origin'),
      new CheckedHeader('access-control-allow-origin', 'https://app.example'),
      new CheckedHeader('x-policy', 'gateway'),
    ];
    const seen: unknown[] = [];
    const changed = await rawAnswer((res) => {
      setCheckedHeaders(res, shared);
      seen.push(
        res.getHeaderNames(),
        res.getHeader('VARY'),
        res.hasHeader('x-policy'),
        res.hasHeader('x-no'),
      );
      res.setHeader('X-Policy', 'changed');
      res.removeHeader('vary');
      res.setHeader('x-cache', 'MISS');
      res.end();
    });
    await new Promise((resolve) => server!.close(resolve));
    const replaced = await rawAnswer((res) => {
      setCheckedHeaders(res, shared);
      writeLowerCaseHead(res, 200, { 'x-policy': 'origin', 'content-length': '2' }, [
        new CheckedHeader('x-served-by', 'vantageedge'),
      ]);
      res.end('ok');
    });
    await new Promise((resolve) => server!.close(resolve));
    const asSet = await rawAnswer((res) => {
      setCheckedHeaders(res, shared);
      writeLowerCaseHead(res, 200, { 'content-length': '2' });
      res.end('ok');
    });
    const lines = (raw: string[]) =>
      pairs(raw).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    expect(seen).toEqual([['vary', 'access-control-allow-origin', 'x-policy'], 'Origin', true, false]);
    expect(lines(changed)).toEqual([
      ['access-control-allow-origin', 'https://app.example'],
      ['X-Policy', 'changed'],
      ['x-cache', 'MISS'],
      ['Content-Length', '0'],
    ]);
    expect(lines(replaced)).toEqual([
      ['Vary', 'Origin'],
      ['access-control-allow-origin', 'https://app.example'],
      ['x-served-by', 'vantageedge'],
      ['x-policy', 'origin'],
      ['content-length', '2'],
    ]);
    expect(lines(asSet)).toEqual([
      ['Vary', 'Origin'],
      ['access-control-allow-origin', 'https://app.example'],
      ['x-policy', 'gateway'],
      ['content-length', '2'],
    ]);
  });

  it('sends checked headers set among others (X-Request-Id first) in the order set, whatever changed', async () => {
    const shared = [
      new CheckedHeader('Vary', 'Origin'),
      new CheckedHeader('access-control-allow-origin', 'https://app.example'),
      new CheckedHeader('x-policy', 'gateway'),
    ];
    const seen: unknown[] = [];
    const lines = (raw: string[]) =>
      pairs(raw).filter(([name]) => !['Date', 'Connection', 'Keep-Alive'].includes(name));
    const beside = await rawAnswer((res) => {
      res.setHeader('X-Request-Id', 'r1');
      res.setHeader('x-early', 'gone');
      setCheckedHeaders(res, shared);
      res.setHeader('X-Cache', 'MISS');
      setCheckedHeaders(res, [new CheckedHeader('x-served-by', 'vantageedge')]);
      res.removeHeader('x-early');
      seen.push(res.getHeaderNames(), res.getHeader('Access-Control-Allow-Origin'), res.hasHeader('x-early'));
      writeLowerCaseHead(res, 200, { 'x-request-id': 'r2', 'content-length': '2' });
      res.end('ok');
    });
    await new Promise((resolve) => server!.close(resolve));
    const changed = await rawAnswer((res) => {
      res.setHeader('X-Request-Id', 'r1');
      setCheckedHeaders(res, shared);
      res.setHeader('X-Cache', 'MISS');
      res.appendHeader('vary', 'Accept-Encoding');
      res.removeHeader('x-policy');
      seen.push(res.getHeaderNames());
      res.writeHead(200, { 'Access-Control-Allow-Origin': 'https://other.example', 'content-length': '2' });
      res.end('ok');
    });
    await new Promise((resolve) => server!.close(resolve));
    const replacing = await rawAnswer((res) => {
      res.setHeader('X-Request-Id', 'r1');
      res.setHeader('vary', 'Accept');
      setCheckedHeaders(res, shared);
      res.end();
    });
    expect(seen).toEqual([
      ['x-request-id', 'vary', 'access-control-allow-origin', 'x-policy', 'x-cache', 'x-served-by'],
      'https://app.example',
      false,
      ['x-request-id', 'vary', 'access-control-allow-origin', 'x-cache'],
    ]);
    expect(lines(beside)).toEqual([
      ['Vary', 'Origin'],
      ['access-control-allow-origin', 'https://app.example'],
      ['x-policy', 'gateway'],
      ['x-served-by', 'vantageedge'],
      ['X-Cache', 'MISS'],
      ['x-request-id', 'r2'],
      ['content-length', '2'],
    ]);
    expect(lines(changed)).toEqual([
      ['X-Request-Id', 'r1'],
      ['vary', 'Origin'],
      ['vary', 'Accept-Encoding'],
      ['X-Cache', 'MISS'],
      ['Access-Control-Allow-Origin', 'https://other.example'],
      ['content-length', '2'],
    ]);
    expect(lines(replacing)).toEqual([
      ['Vary', 'Origin'],
      ['access-control-allow-origin', 'https://app.example'],
      ['x-policy', 'gateway'],
      ['X-Request-Id', 'r1'],
      ['Content-Length', '0'],
    ]);
  });

  it('gives each response of two origins, interleaved, its own origin’s checked headers, whatever the others did', async () => {
    const headersOf = (origin: string) => [
      new CheckedHeader('vary', 'Origin'),
      new CheckedHeader('access-control-allow-origin', origin),
    ];
    const byOrigin: Record<string, readonly CheckedHeader[]> = {
      a: headersOf('https://a.example'),
      b: headersOf('https://b.example'),
    };
    // What a later stage, the cache or an error may do to a response they were set on (first, or
    // after X-Request-Id as the pipeline sets it).
    const changes: Array<(res: ServerResponse) => void> = [
      (res) => res.appendHeader('Vary', 'Accept-Encoding'),
      (res) => res.setHeader('Access-Control-Allow-Origin', 'https://evil.example'),
      (res) => res.removeHeader('access-control-allow-origin'),
      (res) => {
        const headers = res.getHeaders();
        headers['access-control-allow-origin'] = 'https://evil.example';
        res.getHeaderNames().push('x-evil');
      },
      (res) => res.writeHead(200, { 'Access-Control-Allow-Origin': 'https://evil.example', Vary: '*' }),
      (res) => res.writeHead(200, ['access-control-allow-origin', 'https://evil.example']),
      (res) => writeLowerCaseHead(res, 304, { vary: 'Origin, Accept' }),
      (res) => res.flushHeaders(),
    ];
    server = createServer({ ServerResponse: GatewayServerResponse }, (req, res) => {
      const [origin, change, first] = (req.url ?? '').slice(1).split('/');
      if (first === 'id') res.setHeader('X-Request-Id', `r-${change}`);
      setCheckedHeaders(res, byOrigin[origin!]!);
      changes[Number(change)]?.(res);
      res.end();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const first of ['-', 'id']) {
      for (let change = 0; change < changes.length; change++) {
        await fetch(`${base}/a/${change}/${first}`);
        for (const origin of ['a', 'b']) {
          for (const later of ['-', 'id']) {
            const response = await fetch(`${base}/${origin}/-/${later}`);
            expect(
              [response.headers.get('vary'), response.headers.get('access-control-allow-origin')],
              `${change} ${first} ${later}`,
            ).toEqual(['Origin', `https://${origin}.example`]);
          }
        }
      }
    }
  });

  it('refuses, when a checked header is made, what node would refuse and the headers node frames with', () => {
    expect(() => new CheckedHeader('x-bad', 'line\r\nbreak')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CHAR' }),
    );
    expect(() => new CheckedHeader('bad name', 'v')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_HTTP_TOKEN' }),
    );
    for (const name of ['Content-Length', 'transfer-encoding', 'connection', 'date', 'set-cookie'])
      expect(() => new CheckedHeader(name, '1')).toThrow(TypeError);
  });
});

async function rawAnswer(respond: (res: ServerResponse) => void): Promise<string[]> {
  server = createServer({ ServerResponse: GatewayServerResponse }, (_req, res) => respond(res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return new Promise<string[]>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/' }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.rawHeaders));
    }).on('error', reject);
  });
}

function pairs(rawHeaders: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) out.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return out;
}
