import type { Logger } from '@vantageedge/shared/observability/logger';
import type { SlicedWork } from '@vantageedge/shared/process/event-loop-slices';
import type { Authenticator } from '../auth/authenticator.js';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import type { OpenWebSockets } from './open-websockets.js';
import type { ProxiedConnection } from './proxied-connection.js';
import { TenantSweeps } from './tenant-sweeps.js';
import { TenantAdmissions, verifiedByAnotherKeySet } from './websocket-admission.js';

export interface AdmissionRechecksOptions {
  /**
   * `get` and `resolveHost`: the tenant's version now and who serves a host now. `watchTenants`: after
   * each snapshot, the tenants it changed.
   */
  store: TenantResolver & {
    get(tenantId: string): CompiledTenant | undefined;
    watchTenants?(listener: (tenantIds: ReadonlySet<string>) => void): () => void;
  };
  /** The apps whose Clerk session tokens a tenant's routes take now (its own list, else the gateways'). */
  authenticator: Pick<Authenticator, 'authorizedPartiesOf'>;
  logger?: Logger | undefined;
}

/**
 * After each snapshot, the open WebSockets of the tenants it changed are closed where it withdrew what
 * admitted them (the route, the origin, the credentials, the tenant itself); those that stay open are
 * closed when their credentials expire under the tenant's settings now.
 */
export class AdmissionRechecks {
  readonly #options: AdmissionRechecksOptions;
  readonly #open: OpenWebSockets;
  /** The checks of each changed tenant's open connections, in slices of the event loop. */
  readonly #sweeps = new TenantSweeps();
  readonly #unwatch: (() => void) | undefined;

  constructor(options: AdmissionRechecksOptions, open: OpenWebSockets) {
    this.#options = options;
    this.#open = open;
    this.#unwatch = options.store.watchTenants?.((tenantIds) => {
      for (const tenantId of tenantIds) this.#recheckTenant(tenantId);
    });
  }

  /** Shutdown: no more checks (every connection is being closed). */
  stop(): void {
    this.#unwatch?.();
    this.#sweeps.stopAll();
  }

  /** A connection whose origin switched after a snapshot changed its tenant: that snapshot's check missed it. */
  admittedDuringChange(connection: ProxiedConnection): void {
    const { tenantId, host } = connection.admission;
    // A sweep waiting for the tenant's key set checks it with the others.
    if (this.#sweeps.preparing(tenantId)) return;
    const store = this.#options.store;
    const tenant = store.get(tenantId);
    if (tenant === undefined) {
      this.#open.withdraw(connection, 'tenant_removed');
      return;
    }
    if (tenant.version === connection.admittedVersion && store.resolveHost(host)?.id === tenantId) return;
    this.#recheck(connection, this.#admissions(tenant), Date.now());
  }

  /**
   * A snapshot changed the tenant (or gave one of its hosts to another tenant): every open WebSocket of
   * the tenant whose admission it withdrew is closed. The snapshot is indexed once; each connection is
   * checked from what it recorded at its upgrade, its credentials never verified again — but tokens
   * verified by a key set the tenant no longer names are judged by the one it names now, fetched first
   * if the replica has not yet. The connections are checked in slices of the event loop.
   */
  #recheckTenant(tenantId: string): void {
    const connections = this.#open.ofTenant(tenantId);
    if (connections === undefined) return;
    const keys = this.#options.store.get(tenantId)?.auth.oidc?.keys;
    const loadKeys =
      keys !== undefined && [...connections].some(({ admission }) => verifiedByAnotherKeySet(admission, keys))
        ? () => keys.load()
        : undefined;
    this.#sweeps
      .run(tenantId, loadKeys, () => this.#rechecking(tenantId))
      .catch((error: unknown) =>
        this.#options.logger?.error('websocket recheck failed', {
          tenant_id: tenantId,
          error: String(error),
        }),
      );
  }

  /** The tenant's open connections checked against its version now, one step each. */
  *#rechecking(tenantId: string): SlicedWork<void> {
    const store = this.#options.store;
    const tenant = store.get(tenantId);
    const admissions = tenant && this.#admissions(tenant);
    const now = Date.now();
    for (const connection of [...(this.#open.ofTenant(tenantId) ?? [])]) {
      // Closed, or told to close, since the sweep listed it.
      if (connection.closing || !this.#open.has(connection)) continue;
      if (admissions === undefined) this.#open.withdraw(connection, 'tenant_removed');
      else this.#recheck(connection, admissions, now);
      yield;
    }
  }

  #admissions(tenant: CompiledTenant): TenantAdmissions {
    const { store, authenticator } = this.#options;
    return new TenantAdmissions(
      tenant,
      (host) => store.resolveHost(host),
      authenticator.authorizedPartiesOf(tenant),
    );
  }

  /** Closes the connection if `admissions` withdraws it; else it closes when its credentials expire there. */
  #recheck(connection: ProxiedConnection, admissions: TenantAdmissions, nowMs: number): void {
    const reason = admissions.withdrawal(connection.admission, nowMs);
    if (reason !== undefined) {
      this.#open.withdraw(connection, reason);
      return;
    }
    connection.admission = admissions.withKeyExpiry(connection.admission);
    this.#open.closeOnExpiry(connection, admissions.credentialsExpireAtMs(connection.admission));
    const held = admissions.withCurrentKeySet(connection.admission);
    if (held === connection.admission || held.verifiedWith === undefined) return;
    connection.admission = held;
    this.#open.watchKeySet(connection, held.verifiedWith);
  }
}
