import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { BodyTap } from './stage.js';

/**
 * The client response with taps on its body: every chunk goes to the client (with its backpressure)
 * and to each tap; when the origin's body is complete the taps hear `end` before the response ends.
 * A body cut short (origin failure, client gone) never reaches `end`.
 */
export function tappedResponse(res: ServerResponse, taps: readonly BodyTap[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const tap of taps) tap.chunk(chunk);
      if (res.write(chunk)) callback();
      else res.once('drain', () => callback());
    },
    final(callback) {
      for (const tap of taps) tap.end();
      res.end(() => callback());
    },
  });
}
