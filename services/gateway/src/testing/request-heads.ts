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
