import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { TestGateway } from './gateway-harness.js';

export interface UpgradeAnswer {
  /** 101 when the gateway switched protocols, else the status of its (or the origin's) answer. */
  status: number;
  headers: IncomingHttpHeaders;
  /** The answer's body (empty for a 101). */
  text: string;
}

/**
 * One WebSocket upgrade (GET with `Upgrade: websocket`) through the gateway with the given Host header,
 * at the HTTP level: resolves with the answer's status, headers and body; a switched connection is
 * closed at once.
 */
export function sendUpgrade(
  gateway: TestGateway,
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      method: 'GET',
      path,
      headers: {
        host,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '' });
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
