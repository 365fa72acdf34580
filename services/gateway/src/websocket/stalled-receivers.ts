import type { ProxiedConnection } from './proxied-connection.js';

/** Which side took none of the frames waiting for it. */
export type StalledSide = 'client' | 'origin';

/**
 * GATEWAY_SEND_TIMEOUT_MS on open WebSockets, as nginx holds an upgraded connection to `send_timeout`
 * toward the client and `proxy_send_timeout` toward the origin: a side that took none of the frames
 * waiting for it for a whole timeout is reported (and its connection closed by the caller). The idle
 * timeout does not see it: a client that stopped reading but sent a ping now and then kept its
 * WebSocket open, the origin's frames stalled behind it, for ever. One check per timeout over the open
 * connections, as for HTTP/1.1 responses (send-timeout.ts): a stalled side is seen within one to two
 * timeouts; a side reading slowly but steadily never is.
 */
export class StalledReceivers {
  readonly #timeoutMs: number;
  readonly #onStalled: (connection: ProxiedConnection, side: StalledSide) => void;
  /** Each watched connection's sending state toward the client and the origin at the last check. */
  readonly #watched = new Map<
    ProxiedConnection,
    [toClient: string | undefined, toOrigin: string | undefined]
  >();
  #check: NodeJS.Timeout | undefined;

  /** `timeoutMs`: 0 = never. */
  constructor(timeoutMs: number, onStalled: (connection: ProxiedConnection, side: StalledSide) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onStalled = onStalled;
  }

  watch(connection: ProxiedConnection): void {
    if (this.#timeoutMs <= 0) return;
    this.#watched.set(connection, [undefined, undefined]);
    if (this.#check !== undefined) return;
    this.#check = setInterval(() => this.#checkAll(), this.#timeoutMs);
    this.#check.unref();
  }

  forget(connection: ProxiedConnection): void {
    this.#watched.delete(connection);
    if (this.#watched.size > 0 || this.#check === undefined) return;
    clearInterval(this.#check);
    this.#check = undefined;
  }

  #checkAll(): void {
    for (const [connection, [toClientBefore, toOriginBefore]] of this.#watched) {
      const toClient = connection.toClient.sendingState;
      const toOrigin = connection.toUpstream.sendingState;
      if (toClient !== undefined && toClient === toClientBefore) this.#stalled(connection, 'client');
      else if (toOrigin !== undefined && toOrigin === toOriginBefore) this.#stalled(connection, 'origin');
      else this.#watched.set(connection, [toClient, toOrigin]);
    }
  }

  #stalled(connection: ProxiedConnection, side: StalledSide): void {
    this.forget(connection);
    this.#onStalled(connection, side);
  }
}
