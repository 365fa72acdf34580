import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayServerResponse } from '../http/gateway-server-response.js';
import { GatewayExchange } from '../pipeline/exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createFixedResponsePolicy } from './fixed-response-stage.js';

/**
 * A fixed response's headers are checked once, when the route compiles, and written as prepared head
 * lines: a route may set 30 values of 1,000 characters, which node checked again on every answer (about
 * 80 µs of a replica's event loop per request of the route).
 */

type HeadWriter = (this: unknown, firstLine: string, headers: unknown) => void;
const prototype = GatewayServerResponse.prototype as unknown as { _storeHeader: HeadWriter };
const headWriter = prototype._storeHeader;
afterEach(() => {
  prototype._storeHeader = headWriter;
});

/** The answer's head, and how many header fields node was given to check as it wrote it. */
async function answer(headers: Record<string, string>): Promise<{ head: string; checkedByNode: number }> {
  const snapshot = buildSnapshot({
    subdomain: 'fixed',
    origins: [],
    routes: [{ origin_id: null, path_pattern: '/*', fixed_response: { status: 503, body: 'down', headers } }],
  });
  const stage = createFixedResponsePolicy().compileRoute({
    tenant: snapshot.tenant,
    route: snapshot.routes[0] as RouteConfig,
    origins: new Map(),
    warn: () => {},
    apiKeyQuotas: new Map(),
  });
  let written = '';
  const socket = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.toString('latin1');
      callback();
    },
    writev(chunks, callback) {
      for (const { chunk } of chunks) written += Buffer.from(chunk).toString('latin1');
      callback();
    },
    read() {},
  }) as unknown as Socket;
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.headers = { host: 'fixed.localhost' };
  const res = new GatewayServerResponse(req);
  res.assignSocket(socket);
  res.setHeader('x-request-id', 'r-1');
  let checkedByNode = 0;
  prototype._storeHeader = function (firstLine, given) {
    checkedByNode += Array.isArray(given) ? given.length / 2 : Object.keys(given ?? {}).length;
    headWriter.call(this, firstLine, given);
  };
  stage!.onRequest!(new GatewayExchange(req, res, 'r-1', '127.0.0.1'));
  await new Promise((resolve) => setImmediate(resolve));
  return { head: written.slice(0, written.indexOf('\r\n\r\n') + 4), checkedByNode };
}

const values = (count: number) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-fixed-${i}`, `${i}-${'v'.repeat(990)}`]));

describe('fixed response head', () => {
  it('gives node the same few fields to check, however many headers the route sets', async () => {
    const one = await answer(values(1));
    const thirty = await answer(values(30));
    expect(thirty.checkedByNode).toBe(one.checkedByNode);
  });

  it('still writes every header the route sets, once, with the gateway’s own', async () => {
    const { head } = await answer({ ...values(3), 'Retry-After': '120', vary: 'Accept' });
    expect(head.startsWith('HTTP/1.1 503 Service Unavailable\r\n')).toBe(true);
    for (const line of [
      `x-fixed-0: 0-${'v'.repeat(990)}`,
      `x-fixed-2: 2-${'v'.repeat(990)}`,
      'retry-after: 120',
      'vary: Accept',
      'x-request-id: r-1',
      'content-type: text/plain; charset=utf-8',
      'content-length: 4',
    ]) {
      expect(
        head
          .toLowerCase()
          .split('\r\n')
          .filter((l) => l === line.toLowerCase()),
      ).toHaveLength(1);
    }
  });
});
