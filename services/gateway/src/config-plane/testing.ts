import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { TenantConfigSink } from '../config/tenant-config-sink.js';

/** A TenantConfigSink that keeps snapshots as they are, with the sink contract's version rules. */
export class RecordingSink implements TenantConfigSink {
  readonly tenants = new Map<string, TenantSnapshot>();
  readonly #versions = new Map<string, bigint>();
  readonly #applied = new Map<string, bigint>();
  applyCalls = 0;
  /** Set to make apply throw (a snapshot the gateway cannot compile). */
  failWith: Error | null = null;

  apply(snapshot: TenantSnapshot): boolean {
    this.applyCalls += 1;
    const version = BigInt(snapshot.version);
    const known = this.#versions.get(snapshot.tenant_id);
    if (known !== undefined && version <= known) return false;
    if (this.failWith) throw this.failWith;
    this.tenants.set(snapshot.tenant_id, snapshot);
    this.#versions.set(snapshot.tenant_id, version);
    this.#applied.set(snapshot.tenant_id, version);
    return true;
  }

  remove(tenantId: string): boolean {
    this.#applied.delete(tenantId);
    return this.tenants.delete(tenantId);
  }

  appliedVersions(): ReadonlyMap<string, bigint> {
    return this.#applied;
  }
}
