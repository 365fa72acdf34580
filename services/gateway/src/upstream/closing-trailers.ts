import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { buildConnector, Dispatcher } from 'undici';
import { preparingConnections } from './prepared-connections.js';

/**
 * Origin connections closed once an answer's trailer section says `Connection: close`. The origin
 * closes its side after such an answer (RFC 9110 §7.6.1), but undici decides whether a connection is
 * kept from the answer's head only: it put the connection back in the pool and the next request sent
 * down it was answered 502.
 *
 * undici reads an answer where it parses it: each `socket.read()` is followed at once, in the same
 * call, by the parsing that ends an answer and hands its trailers to the proxy's handler. So the socket
 * last read is the one whose answer ended; noting it costs an assignment per read, where undici's
 * diagnostics channels would cost two messages and a map entry per request.
 */
export function closableOnClosingTrailers(connector: buildConnector.connector): buildConnector.connector {
  return preparingConnections(connector, (socket) => {
    const read = socket.read;
    socket.read = function noteRead(this: Duplex, size?: number) {
      socketBeingRead = this;
      return read.call(this, size);
    };
  });
}

let socketBeingRead: Duplex | undefined;

/**
 * Called with an answer's trailers as it ends (from the proxy's handler, while undici parses it):
 * closes the connection it came on when they say `Connection: close`.
 */
export function closeConnectionIfTrailersSayClose(
  trailers: Readonly<Record<string, unknown>> | undefined,
): void {
  if (trailers === undefined || socketBeingRead === undefined) return;
  const connection = trailers['connection'];
  if (connection === undefined) return;
  const options = (Array.isArray(connection) ? connection.join(',') : String(connection))
    .toLowerCase()
    .split(',');
  if (options.some((option) => option.trim() === 'close')) socketBeingRead.destroy();
}

type DispatchController = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>[0];

/**
 * An interceptor for a dispatcher whose connections are `closableOnClosingTrailers` and whose callers
 * never see the trailers as the answer ends (undici's `request` hands them over only once its body is
 * read): it closes the connection of each answer whose trailers say `Connection: close`, as the proxy's
 * handler does.
 */
export const closingOnClosingTrailers: Dispatcher.DispatcherComposeInterceptor =
  (dispatch) => (options, handler) =>
    dispatch(options, new ClosingOnTrailers(handler));

class ClosingOnTrailers implements Dispatcher.DispatchHandler {
  readonly #handler: Dispatcher.DispatchHandler;

  constructor(handler: Dispatcher.DispatchHandler) {
    this.#handler = handler;
  }

  onRequestStart(controller: DispatchController, context: unknown): void {
    this.#handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(
    controller: DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    this.#handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(
    controller: DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    this.#handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    this.#handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: DispatchController, trailers: IncomingHttpHeaders): void {
    closeConnectionIfTrailersSayClose(trailers);
    this.#handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: DispatchController, error: Error): void {
    this.#handler.onResponseError?.(controller, error);
  }
}
