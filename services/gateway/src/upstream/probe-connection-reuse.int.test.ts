import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { onRequestHeads } from '../testing/request-heads.js';
import { firstProbeResults } from './testing/probe-results.js';

/**
 * Regression test: a health probe answered with `Connection: close` in its trailer section left its
 * connection open for the next probe (proxied requests close theirs), and that probe, sent to an origin
 * that had closed its side, failed: a healthy target was marked down. The origin here resets whatever
 * it reads after such an answer on that connection, as a server that has closed its side does.
 */
/** Serves a connection's first request with an answer whose trailers hold `trailer`, resets on the next. */
function closingInTrailers(trailer: string): (socket: Socket) => void {
  return (socket) => {
    let closed = false;
    onRequestHeads(socket, () => {
      if (closed) {
        socket.resetAndDestroy();
        return;
      }
      socket.write(
        `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Connection\r\n\r\n2\r\nok\r\n0\r\n${trailer}\r\n\r\n`,
      );
      closed = true;
    });
  };
}

describe('a health probe answered with trailers saying Connection: close', () => {
  it.each(['Connection: close', 'connection: TE, Close'])(
    '%s: the next probe goes on a new connection and succeeds',
    async (trailer) => {
      expect(await firstProbeResults(closingInTrailers(trailer), 3)).toEqual([true, true, true]);
    },
  );
});
