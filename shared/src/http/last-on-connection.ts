import type { IncomingMessage, ServerResponse } from 'node:http';
import { arrivedOverHttp2 } from './request-version.js';

/** HTTP/1.1 connections whose framing the gateway stopped trusting (a request it refused for that). */
const distrusted = new WeakSet<object>();

/**
 * Makes this request's answer the last of its HTTP/1.1 connection: the connection closes after it, and
 * requests pipelined behind it are never handled (see followsLastAnswer). Closing alone is not enough:
 * node's parser has already read, and hands the handler, whatever followed in the same bytes, which a
 * proxy in front may have framed as a body of this request. No-op over HTTP/2, whose framing is its own.
 */
export function answerLastOnConnection(req: IncomingMessage, res: ServerResponse): void {
  if (arrivedOverHttp2(req)) return;
  res.shouldKeepAlive = false;
  handleNoMoreRequestsOn(req.socket);
}

/** No request of this HTTP/1.1 connection that has not run yet is handled (see followsLastAnswer). */
export function handleNoMoreRequestsOn(socket: object): void {
  distrusted.add(socket);
}

/** HTTP/1.1 requests answered by their listener before their turn came: they are not handled. */
const answeredEarly = new WeakSet<object>();

/** `req`, waiting its turn on its HTTP/1.1 connection, is answered by the listener: it is not handled. */
export function handleNeverRequest(req: object): void {
  answeredEarly.add(req);
}

/**
 * The request came on a connection after one whose answer was made its last, or its listener answered it
 * (handleNeverRequest): it is not handled.
 */
export function followsLastAnswer(req: IncomingMessage): boolean {
  return !arrivedOverHttp2(req) && (distrusted.has(req.socket) || answeredEarly.has(req));
}
