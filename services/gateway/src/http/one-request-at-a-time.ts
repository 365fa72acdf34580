import type { IncomingMessage, ServerResponse } from 'node:http';
import { arrivedOverHttp2 } from './request-version.js';
import { afterResponsesInFlight, responseInFlight } from './responses-in-flight.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * `handler` running the requests of an HTTP/1.1 connection one after another, as nginx does: a request
 * pipelined behind others waits until their answers are out before anything of it runs. Node hands
 * over every request it parses at once, so otherwise one write of pipelined requests started an origin
 * request for each (one connection holding hundreds of its tenant's origin sockets and upstream slots)
 * and their answers waited in memory for a client that might never read the first. A waiting request
 * costs its parsed head; its body, if any, stays in the socket until it runs. HTTP/2 streams, held to
 * the client's slots, are handed on at once.
 */
export function oneRequestAtATime(handler: Handler): Handler {
  return (req, res) => {
    // The common case, checked first: nothing ahead of this request (node is writing its answer).
    const ahead = responseInFlight(req.socket);
    if (!ahead || ahead === res || arrivedOverHttp2(req)) handler(req, res);
    else afterResponsesInFlight(req.socket, () => handler(req, res), res);
  };
}
