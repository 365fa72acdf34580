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
}

/**
 * `handler` running the requests of an HTTP/1.1 connection one after another, as nginx does: a request
 * pipelined behind others waits until their answers are out before anything of it runs. Node hands
 * over every request it parses at once, so otherwise one write of pipelined requests started an origin
 * request for each (one connection holding hundreds of its tenant's origin sockets and upstream slots)
 * and their answers waited in memory for a client that might never read the first. A waiting request
 * costs its parsed head; its body, if any, stays in the socket until it runs. HTTP/2 streams, held to
 * the client's slots, are handed on at once.
 *
 * A connection's waiting requests form one queue with one listener on the answer being written: up to
 * GATEWAY_MAX_REQUESTS_PER_CONNECTION may be pipelined, and a listener each on every answer ahead would
 * cost work in the square of their number.
 */
export function oneRequestAtATime(handler: Handler): Handler {
  const queues = new WeakMap<Duplex, Waiting[]>();
  return (req, res) => {
    // The common case, checked first: nothing ahead of this request (node is writing its answer).
    const ahead = responseInFlight(req.socket);
    if (!ahead || ahead === res || arrivedOverHttp2(req)) {
      handler(req, res);
      return;
    }
    const socket = req.socket;
    const waiting = queues.get(socket);
    if (waiting !== undefined) {
      waiting.push({ res, run: () => handler(req, res) });
      return;
    }
    const queue: Waiting[] = [{ res, run: () => handler(req, res) }];
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
        const first = queue[0];
        if (first === undefined || followsLastAnswer(first.res.req)) return abandon();
        const inFlight = responseInFlight(socket);
        if (inFlight && inFlight !== first.res) {
          inFlight.once('finish', runNext);
          return;
        }
        queue.shift();
        first.run();
      }
    };
    // After node's own `finish` listener, which hands the connection to the next queued response.
    ahead.once('finish', runNext);
  };
}
