import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How often node looks for connections past the headers/request timeouts (its default is 30 s). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/** What node adds to the keep-alive timeout before it closes an idle connection (its default buffer). */
const NODE_KEEP_ALIVE_BUFFER_MS = 1_000;

const IDLE = Symbol('vantageedge.idleKeepAlive');

interface IdleState {
  /** Requests of the connection not answered yet (pipelining allows several). */
  inFlight: number;
  /** The check (counted since the listener started) at which the last response ended. */
  idleSince: number;
}

type TrackedSocket = Socket & { [IDLE]?: IdleState };
type TrackedResponse = ServerResponse & { [IDLE]?: IdleState };

/** A server that emits node's HTTP/1.1 `request`, `upgrade` and `connect` events (plain or TLS). */
interface Http1Events {
  on(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
  on(event: 'upgrade' | 'connect', listener: (req: IncomingMessage) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'newListener', listener: (event: string | symbol) => void): unknown;
  off(event: 'newListener', listener: (event: string | symbol) => void): unknown;
  listenerCount(event: 'upgrade' | 'connect'): number;
}

/**
 * An idle HTTP/1.1 keep-alive connection must begin its next request within the keep-alive timeout and
 * finish its head within the headers timeout, or it is closed.
 *
 * Node drops an idle connection's keep-alive timer at the first byte that arrives (taking it for the next
 * request), but blank lines begin no request, so its headers timeout never starts either: a client
 * sending `\r\n` now and then held a connection slot (GATEWAY_MAX_CONNECTIONS, CONTROL_PLANE_MAX_CONNECTIONS)
 * for ever.
 *
 * A request only counts itself in and out (no timer per request): a check every
 * TIMEOUT_CHECK_INTERVAL_MS closes the connections idle for longer than node's own limits allow.
 */
export function limitIdleKeepAlive(
  server: Http1Events,
  timeouts: { keepAliveTimeoutMs: number; headersTimeoutMs: number },
): void {
  // 0: keep-alive connections are never timed out (node's meaning), nothing to enforce.
  if (timeouts.keepAliveTimeoutMs <= 0) return;
  // Later than node's own 408 for a request head begun in time (checked every TIMEOUT_CHECK_INTERVAL_MS).
  const idleMs =
    timeouts.keepAliveTimeoutMs +
    NODE_KEEP_ALIVE_BUFFER_MS +
    timeouts.headersTimeoutMs +
    TIMEOUT_CHECK_INTERVAL_MS;
  const idleChecks = Math.ceil(idleMs / TIMEOUT_CHECK_INTERVAL_MS);
  const tracked = new Set<TrackedSocket>();
  let checks = 0;
  const check = setInterval(() => {
    checks++;
    for (const socket of tracked) {
      const state = socket[IDLE]!;
      if (state.inFlight === 0 && checks - state.idleSince > idleChecks) socket.destroy();
    }
  }, TIMEOUT_CHECK_INTERVAL_MS);
  check.unref();
  server.on('close', () => clearInterval(check));

  function untrack(this: TrackedSocket): void {
    tracked.delete(this);
  }
  function answered(this: TrackedResponse): void {
    const state = this[IDLE]!;
    if (--state.inFlight === 0) state.idleSince = checks;
  }

  server.on('request', (req, res) => {
    // HTTP/2 streams have their session's limits.
    if (req.httpVersionMajor !== 1) return;
    const socket = req.socket as TrackedSocket;
    let state = socket[IDLE];
    if (state === undefined) {
      state = { inFlight: 0, idleSince: 0 };
      socket[IDLE] = state;
      tracked.add(socket);
      socket.once('close', untrack);
    }
    state.inFlight++;
    (res as TrackedResponse)[IDLE] = state;
    res.on('close', answered); // once per response
  });
  // The connection leaves HTTP (a WebSocket, or CONNECT's refusal): no longer a keep-alive connection.
  // Followed only on a server that takes such requests itself: any listener of `upgrade` or `connect`
  // makes node hand it those requests, where without one node answers an upgrade as a request (a
  // metrics or admin listener marks it internal) and closes a CONNECT.
  const leftHttp = (req: IncomingMessage) => {
    tracked.delete(req.socket as TrackedSocket);
  };
  for (const event of ['upgrade', 'connect'] as const) {
    if (server.listenerCount(event) > 0) {
      server.on(event, leftHttp);
      continue;
    }
    const followOnceTaken = (added: string | symbol) => {
      if (added !== event) return;
      server.off('newListener', followOnceTaken);
      server.on(event, leftHttp);
    };
    server.on('newListener', followOnceTaken);
  }
}
