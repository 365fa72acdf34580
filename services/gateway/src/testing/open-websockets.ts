import WebSocket from 'ws';
import type { TestGateway } from './gateway-harness.js';

export interface WebSocketClosed {
  code: number;
  reason: string;
}

export interface OpenWebSocket {
  socket: WebSocket;
  /** How the connection ended, once it has. */
  closed: Promise<WebSocketClosed>;
}

/**
 * A WebSocket through `gateway`, once the origin said hello (its first message). Refused (an HTTP
 * answer), failed, or closed before that hello — a snapshot may withdraw it meanwhile — it rejects.
 */
export function openWebSocket(
  gateway: TestGateway,
  path: string,
  headers: Record<string, string>,
): Promise<OpenWebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}${path}`, { headers });
    const closed = new Promise<WebSocketClosed>((done) =>
      socket.once('close', (code, reason) => done({ code, reason: String(reason) })),
    );
    socket.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    socket.once('error', reject);
    socket.once('close', (code) => reject(new Error(`closed with ${code} before the origin's hello`)));
    socket.once('message', () => resolve({ socket, closed }));
  });
}

/** A message there and back: the connection is still open end to end. */
export function roundTrip(socket: WebSocket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('message', (data) => resolve(String(data)));
    socket.once('close', (code) => reject(new Error(`closed with ${code}`)));
    socket.send(message);
  });
}

/** The tenant's WebSocket closures for `reason`, as the gateway's /metrics shows them (0 when absent). */
export async function admissionClosures(
  gateway: TestGateway,
  tenantId: string,
  reason: string,
): Promise<number> {
  const text = await gateway.registry.metrics();
  const match = text.match(
    new RegExp(
      `vantageedge_gateway_websocket_admission_closures_total\\{tenant="${tenantId}",reason="${reason}"\\} (\\d+)`,
    ),
  );
  return match ? Number(match[1]) : 0;
}
