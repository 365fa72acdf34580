import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { followsLastAnswer } from './last-on-connection.js';
import { arrivedOverHttp2 } from './request-version.js';
import { responseInFlight } from './responses-in-flight.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A request pipelined behind others, and how to run it once its turn comes. */
interface Waiting {
  readonly res: ServerResponse;
  readonly run: () => void;
  /** The characters of its request line's target and header fields. */
  readonly headChars: number;
}

/** A connection's requests waiting behind the one being answered, and their heads' characters. */
interface Queue {
  readonly waiting: Waiting[];
  headChars: number;
}

/**
 * The most requests one connection may have waiting, and the most bytes of their heads and bodies:
 * nginx and Envoy read a connection's next request only once the one before is answered, so what a
 * client pipelines waits in socket buffers; node parses it all at once, and each waiting request holds
 * its head, ≈ 2 KB of objects and the body node read into it (up to the request's 64 KiB high-water
 * mark) before parsing the next head. Past either, the connection is closed (its requests dropped), as
 * for a header too large: GATEWAY_MAX_REQUESTS_PER_CONNECTION (1,000) heads of up to
 * GATEWAY_MAX_HEADER_BYTES each, or 32 bodies of 64 KiB, on each of a client's
 * GATEWAY_MAX_CONNECTIONS_PER_CLIENT connections, would be gigabytes.
 */
const MAX_WAITING_REQUESTS = 32;
const MAX_WAITING_BYTES = 64 * 1024;

function headChars(req: IncomingMessage): number {
  let chars = req.url?.length ?? 0;
  for (const field of req.rawHeaders) chars += field.length;
  return chars;
}

/**
 * The body bytes node has read into waiting requests. Node parses a request's head only once the body
 * before it is read (or the connection stopped reading at the request's high-water mark), so when a
 * request joins the queue, the bodies of those already in it are all that they will hold.
 */
function bodyBytes(waiting: readonly Waiting[]): number {
  let bytes = 0;
  for (const { res } of waiting) bytes += res.req.readableLength;
  return bytes;
}

/**
 * Makes handlers that run the requests of an HTTP/1.1 connection one after another, as nginx does: a
 * request pipelined behind others waits until their answers are out before anything of it runs. Node hands
 * over every request it parses at once, so otherwise one write of pipelined requests started an origin
 * request for each (one connection holding hundreds of its tenant's origin sockets and upstream slots)
 * and their answers waited in memory for a client that might never read the first. A waiting request
 * costs its parsed head and what of its body node read into it (the rest stays in the socket until it
 * runs). At most MAX_WAITING_REQUESTS wait, of MAX_WAITING_BYTES together. HTTP/2 streams, held to the
 * client's slots, are handed on at once.
 *
 * A connection's waiting requests form one queue with one listener on the answer being written: a
 * listener each on every answer ahead would cost work in the square of their number. The handlers
 * made by one call's function share the queues: every listener event that hands over a request of a
 * connection ('request', 'checkExpectation') must take its turn in the same one, or an answer given at
 * once would wait in memory, with its request, outside the bounds.
 */
export function requestsInTurn(): (handler: Handler) => Handler {
  const queues = new WeakMap<Duplex, Queue>();
  return (handler) => (req, res) => {
    // The common case, checked first: nothing ahead of this request (node is writing its answer).
    const ahead = responseInFlight(req.socket);
    if (!ahead || ahead === res || arrivedOverHttp2(req)) {
      handler(req, res);
      return;
    }
    const socket = req.socket;
    // Requests node parsed from the same bytes after the connection was closed for holding too many.
    if (socket.destroyed) return;
    const chars = headChars(req);
    const waiting: Waiting = { res, run: () => handler(req, res), headChars: chars };
    const existing = queues.get(socket);
    if (existing !== undefined) {
      if (
        existing.waiting.length >= MAX_WAITING_REQUESTS ||
        existing.headChars + bodyBytes(existing.waiting) + chars > MAX_WAITING_BYTES
      ) {
        socket.destroy();
        return;
      }
      existing.waiting.push(waiting);
      existing.headChars += chars;
      return;
    }
    const queue: Queue = { waiting: [waiting], headChars: chars };
    queues.set(socket, queue);
    // Never run once the connection closed or ended first (a response that was the connection's last),
    // nor once the gateway handles nothing more on it (see handleNoMoreRequestsOn).
    const abandon = () => {
      queues.delete(socket);
      socket.off('close', abandon);
    };
    socket.once('close', abandon);
    const runNext = () => {
      if (!socket.writable) return abandon();
      for (;;) {
        const first = queue.waiting[0];
        if (first === undefined || followsLastAnswer(first.res.req)) return abandon();
        const inFlight = responseInFlight(socket);
        if (inFlight && inFlight !== first.res) {
          inFlight.once('finish', runNext);
          return;
        }
        queue.waiting.shift();
        queue.headChars -= first.headChars;
        first.run();
      }
    };
    // After node's own `finish` listener, which hands the connection to the next queued response.
    ahead.once('finish', runNext);
  };
}
