import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';

/**
 * Calls `onHead` with each request head a raw origin's `socket` receives (latin1, up to the blank line
 * that ends it) and the request's path; what follows a head is kept for the next one. The socket's
 * errors (a gateway that hung up) are ignored.
 */
export function onRequestHeads(socket: Socket, onHead: (head: string, path: string) => void): void {
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    const end = received.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = received.slice(0, end);
    received = received.slice(end + 4);
    onHead(head, head.split(' ')[1] ?? '');
  });
}

/** A raw WebSocket origin's 101 for the upgrade request `head`: its Sec-WebSocket-Accept for the key sent. */
export function switchingProtocols(head: string): string {
  const key = /\r\nsec-websocket-key: *([^\r]*)/i.exec(head)?.[1] ?? '';
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}
