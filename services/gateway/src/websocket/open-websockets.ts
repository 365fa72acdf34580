import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '@vantageedge/shared/observability/logger';
import type { VerifyingKeySet } from '../auth/jwks.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import type { GatewayMetrics } from '../observability/gateway-metrics.js';
import { CLOSE_GOING_AWAY } from './close-frame.js';
import { DeadlineQueue } from './deadline-queue.js';
import {
  CLOSE_ABNORMAL,
  CLOSE_GRACE_MS,
  closeAfterLastFrames,
  closeConnection,
  endedBy,
  type ProxiedConnection,
} from './proxied-connection.js';
import { SigningKeyWatch } from './signing-key-watch.js';
import { StalledReceivers } from './stalled-receivers.js';
import { WITHDRAWAL_CLOSE, type WithdrawalReason } from './websocket-admission.js';
import type { WebSocketMetrics } from './websocket-metrics.js';

export interface OpenWebSocketsOptions {
  /** Whether a connection's tenant is still in the config (series of a removed tenant are not brought back). */
  store: { get(tenantId: string): CompiledTenant | undefined };
  /** A connection with no frame either way for this long is closed (1001); 0 = never. */
  idleTimeoutMs: number;
  /**
   * GATEWAY_SEND_TIMEOUT_MS: a connection whose client or origin took none of the frames waiting for it
   * for this long is closed (1001), however much the other side sends; 0 = never.
   */
  sendTimeoutMs: number;
  /** How long past its credentials' expiry an open WebSocket is closed with 1008; null: never. */
  credentialGraceMs: number | null;
  metrics?: WebSocketMetrics | undefined;
  requestMetrics?: Pick<GatewayMetrics, 'countTenantBandwidth'> | undefined;
  logger?: Logger | undefined;
}

/**
 * The connections the proxy holds on this replica: client sockets of upgrades still waiting for their
 * origin, and switched connections — by tenant, by when their credentials expire and by the key set
 * that verified their token — until they end. Closes them when their admission is withdrawn, their
 * credentials expire, they idle, or the gateway shuts down.
 */
export class OpenWebSockets {
  readonly #options: OpenWebSocketsOptions;
  readonly #open = new Set<ProxiedConnection>();
  /** The open connections of each tenant not yet told to close: a snapshot checks only its tenant's. */
  readonly #openByTenant = new Map<string, Set<ProxiedConnection>>();
  /** The open connections not yet told to close whose credentials expire, by when they are closed for it. */
  readonly #expiries = new DeadlineQueue<ProxiedConnection>((connection) =>
    this.withdraw(connection, 'credentials_expired'),
  );
  /** The open connections admitted by user tokens, by the remote key set that verified them. */
  readonly #signingKeys = new SigningKeyWatch<ProxiedConnection>((connection) =>
    this.withdraw(connection, 'signing_key_withdrawn'),
  );
  /** Client sockets of upgrades not yet switched: node's closeAllConnections no longer reaches them. */
  readonly #pending = new Set<Duplex>();
  /** The open connections, until they end: a side that stops taking its frames gets them closed. */
  readonly #stalls: StalledReceivers;
  #closing = false;

  constructor(options: OpenWebSocketsOptions) {
    this.#options = options;
    this.#stalls = new StalledReceivers(options.sendTimeoutMs, (connection, side) =>
      this.#goAway(connection, `${side} not reading`),
    );
  }

  get size(): number {
    return this.#open.size;
  }

  /** The gateway is shutting down: new upgrades are refused, and so is one its origin switches now. */
  get closing(): boolean {
    return this.#closing;
  }

  /** The client socket of an upgrade not yet switched, until it is or its connection closes. */
  addPending(socket: Duplex): void {
    this.#pending.add(socket);
  }

  /** An upgrade's client socket closed before it switched. */
  deletePending(socket: Duplex): void {
    this.#pending.delete(socket);
  }

  /** Whether the connection is open and not yet told to close. */
  has(connection: ProxiedConnection): boolean {
    return this.#open.has(connection);
  }

  /** The tenant's open connections not yet told to close, if any. */
  ofTenant(tenantId: string): ReadonlySet<ProxiedConnection> | undefined {
    return this.#openByTenant.get(tenantId);
  }

  /**
   * Relays the switched connection until either side ends it (`onClose` then); false when it is closed
   * at once: the key set that verified its token withdrew the key while the origin was answering (the
   * set's refresh came before the connection was watched).
   */
  add(connection: ProxiedConnection, onClose: () => void): boolean {
    const { client, upstream } = connection;
    const { tenantId } = connection.admission;
    this.#pending.delete(client);
    this.#open.add(connection);
    this.#tenantConnections(tenantId).add(connection);
    this.#options.metrics?.opened(tenantId);
    upstream.setNoDelay(true);
    (client as Socket).setNoDelay?.(true);
    // A client may end its side after its close frame and read on until its origin's answer: node's
    // TLS sockets would end theirs at once (its plain ones and HTTP/2 streams are half-open already).
    client.allowHalfOpen = true;
    upstream.on('error', () => upstream.destroy());
    let closed = false;
    const finish = (side: 'client' | 'origin') => {
      if (closed) return;
      closed = true;
      const ending = endedBy(connection, side, CLOSE_ABNORMAL);
      connection.record.ended(ending, connection.toUpstream.bytes, connection.toClient.bytes);
      // Its frames count in the tenant's bandwidth now, unless the tenant left (its series are gone).
      if (this.#options.store.get(tenantId) !== undefined)
        this.#options.requestMetrics?.countTenantBandwidth(
          tenantId,
          connection.toUpstream.bytes,
          connection.toClient.bytes,
        );
      this.#open.delete(connection);
      this.#forget(connection);
      this.#stalls.forget(connection);
      this.#options.metrics?.closed(tenantId, this.#options.store.get(tenantId) === undefined);
      // While the gateway closes it, the other side may still be getting the rest of a frame or its close
      // frame: each relay cuts its side if that can no longer come, the close grace bounds the rest.
      if (!connection.closing) closeAfterLastFrames(connection, side);
      onClose();
    };
    client.once('close', () => finish('client'));
    upstream.once('close', () => finish('origin'));
    const idle = this.#options.idleTimeoutMs;
    if (idle > 0 && 'setTimeout' in client) {
      (client as Socket).setTimeout(idle, () => this.#goAway(connection, 'idle timeout'));
    }
    connection.toUpstream.start();
    connection.toClient.start();
    this.#stalls.watch(connection);
    this.closeOnExpiry(connection, connection.admission.credentialsExpireAtMs);
    const { verifiedWith } = connection.admission;
    // Withdrawn while the origin was answering: the set's refresh came before the connection was watched.
    if (verifiedWith !== undefined && !this.#signingKeys.watch(connection, verifiedWith)) {
      this.withdraw(connection, 'signing_key_withdrawn');
      return false;
    }
    return true;
  }

  /** Closes the connection (1008) once its credentials expire, plus the grace; never without an expiry. */
  closeOnExpiry(connection: ProxiedConnection, expiresAtMs: number | undefined): void {
    const grace = this.#options.credentialGraceMs;
    if (expiresAtMs === undefined || grace === null) this.#expiries.delete(connection);
    else this.#expiries.set(connection, expiresAtMs + grace);
  }

  /**
   * The tenant's new key set lists the signing key of the connection's token: that set's withdrawals
   * close it from now on (at once when it has withdrawn the key already).
   */
  watchKeySet(connection: ProxiedConnection, verifiedWith: VerifyingKeySet): void {
    this.#signingKeys.forget(connection);
    if (!this.#signingKeys.watch(connection, verifiedWith))
      this.withdraw(connection, 'signing_key_withdrawn');
  }

  withdraw(connection: ProxiedConnection, reason: WithdrawalReason): void {
    this.#forget(connection);
    const close = WITHDRAWAL_CLOSE[reason];
    const { tenantId, routeId } = connection.admission;
    this.#options.logger?.info('websocket closed', {
      tenant_id: tenantId,
      route_id: routeId,
      request_id: connection.requestId,
      reason,
      close_code: close.code,
    });
    // A removed tenant's series left /metrics with it.
    if (reason !== 'tenant_removed') this.#options.metrics?.closedOnWithdrawal(tenantId, reason);
    closeConnection(connection, close.code, close.reason);
  }

  /** Shutdown: new upgrades are refused; every open connection is closed with 1001. */
  async closeAll(timeoutMs = CLOSE_GRACE_MS + 500): Promise<void> {
    this.#closing = true;
    this.#expiries.clear();
    for (const connection of this.#open) this.#goAway(connection, 'gateway shutting down');
    const deadline = Date.now() + timeoutMs;
    while (this.#open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** The shutdown deadline: upgrades still waiting for their origin are cut (their leases cancelled). */
  cutPendingUpgrades(): void {
    for (const socket of this.#pending) socket.destroy();
  }

  #goAway(connection: ProxiedConnection, reason: string): void {
    this.#forget(connection);
    closeConnection(connection, CLOSE_GOING_AWAY, reason);
  }

  #tenantConnections(tenantId: string): Set<ProxiedConnection> {
    let connections = this.#openByTenant.get(tenantId);
    if (connections === undefined) {
      connections = new Set();
      this.#openByTenant.set(tenantId, connections);
    }
    return connections;
  }

  #forget(connection: ProxiedConnection): void {
    this.#expiries.delete(connection);
    this.#signingKeys.forget(connection);
    const { tenantId } = connection.admission;
    const connections = this.#openByTenant.get(tenantId);
    if (connections === undefined) return;
    connections.delete(connection);
    if (connections.size === 0) this.#openByTenant.delete(tenantId);
  }
}
