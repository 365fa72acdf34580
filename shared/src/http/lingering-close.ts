import type { Duplex } from 'node:stream';

/** How long a connection closed by a server of the platform still reads and drops what its client sends. */
export const LINGERING_CLOSE_MS = 2_000;

/**
 * Destroys a connection whose end was sent (`end()`, a FIN) LINGERING_CLOSE_MS later, the way servers
 * close a connection whose client may still be sending (nginx's lingering close): until then what
 * arrives is read and dropped. Destroyed at once with the client's bytes unread, the connection is reset,
 * and a reset can discard the answer before the client read it.
 */
export function destroyAfterLingering(connection: Duplex): void {
  setTimeout(() => connection.destroy(), LINGERING_CLOSE_MS).unref();
}
