import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { requestBodyFraming } from './request-body.js';

/** Responses whose client waits for the interim 100 (Continue) before it sends the request's body. */
const awaitingContinue = new WeakSet<object>();

/**
 * Makes a listener answer `Expect: 100-continue` when the gateway reads the request's body (see
 * continueBody), not when the request head arrives as node does by default: a request refused first
 * (no credentials, a body over the route's limit, a rate limit, no route) is answered before its
 * client sends a body the gateway would only discard. A request without a body is sent its 100 at
 * once, as before: nothing of it is to be read.
 *
 * Over HTTP/1.1 node does not keep a connection whose final answer went out without the 100: the
 * client may send the body it announced or not, so the bytes after the head cannot be framed.
 */
export function answerContinueOnRead(server: EventEmitter): void {
  server.on(
    'checkContinue',
    (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      if (requestBodyFraming(req as IncomingMessage) === 'none') res.writeContinue();
      else awaitingContinue.add(res);
      server.emit('request', req, res);
    },
  );
}

/** The gateway is about to read the request's body: the client waiting for a 100 gets it (once). */
export function continueBody(res: ServerResponse | Http2ServerResponse): void {
  if (!awaitingContinue.delete(res) || res.headersSent || res.destroyed) return;
  res.writeContinue();
}
