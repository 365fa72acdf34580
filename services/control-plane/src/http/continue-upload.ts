import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { payloadTooLarge } from './errors.js';

/** Requests whose `Expect: 100-continue` the listener left unanswered (http/listener.ts). */
const heldContinues = new WeakSet<IncomingMessage>();

/**
 * The listener's 'checkContinue': the client waits for `100 Continue` before it sends the body, and gets
 * it only from readBodyAfterContinue, once the request is authenticated and its body is one the route
 * reads. Until then the answer closes the connection: its body was never invited, so it is not read.
 */
export function holdContinue(req: IncomingMessage, res: ServerResponse): void {
  heldContinues.add(req);
  res.setHeader('Connection', 'close');
}

/**
 * A body parser that first invites a held body, unless the body announced is over `limitBytes`: that one
 * is 413 at once (the parser would refuse it too, but only after waiting for all of it to arrive).
 */
export function readBodyAfterContinue(parser: RequestHandler, limitBytes: number): RequestHandler {
  return (req, res, next) => {
    if (heldContinues.delete(req)) {
      if (Number(req.headers['content-length']) > limitBytes) {
        next(payloadTooLarge());
        return;
      }
      res.removeHeader('Connection');
      res.writeContinue();
    }
    parser(req, res, next);
  };
}
