import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';

/**
 * The snapshot JSON whose decoded copies explain keeps, all tenants together. What explain derives from
 * a decoded snapshot lives as long as it does (its route matcher, each route's compiled pattern), and
 * weighs 10–30 times its JSON (1,000 patterns of 255 segments: 0.7 MB of JSON, ≈ 17 MB), so this keeps
 * at most ≈ 40–120 MB.
 */
export const KEPT_SNAPSHOT_BYTES = 4 * 1024 * 1024;

interface Kept<T> {
  readonly value: T;
  readonly tenantId: string;
  readonly bytes: number;
}

/**
 * Values by snapshot, least recently used out once their snapshots' JSON bytes pass `maxBytes`; one
 * tenant's hold at most half, its own going first past that, so that one tenant explaining many
 * versions cannot push out every other tenant's. A snapshot alone past a tenant's half is not kept (it
 * would push the other tenants' out, and their next explains pay their route matchers again).
 */
export class KeptSnapshots<T> {
  readonly #kept = new Map<TenantSnapshot, Kept<T>>();
  readonly #bytesOfTenant = new Map<string, number>();
  #total = 0;

  constructor(readonly maxBytes = KEPT_SNAPSHOT_BYTES) {}

  get(snapshot: TenantSnapshot): T | undefined {
    const kept = this.#kept.get(snapshot);
    if (kept === undefined) return undefined;
    this.#kept.delete(snapshot);
    this.#kept.set(snapshot, kept);
    return kept.value;
  }

  /** `bytes`: the snapshot's JSON bytes. */
  set(snapshot: TenantSnapshot, value: T, bytes: number): void {
    const share = this.maxBytes / 2;
    if (bytes > share || this.#kept.has(snapshot)) return;
    const tenantId = snapshot.tenant_id;
    this.#kept.set(snapshot, { value, tenantId, bytes });
    this.#total += bytes;
    this.#bytesOfTenant.set(tenantId, (this.#bytesOfTenant.get(tenantId) ?? 0) + bytes);
    for (const [other, kept] of this.#kept) {
      if ((this.#bytesOfTenant.get(tenantId) ?? 0) <= share) break;
      if (kept.tenantId === tenantId && other !== snapshot) this.#remove(other, kept);
    }
    for (const [other, kept] of this.#kept) {
      if (this.#total <= this.maxBytes) break;
      if (other !== snapshot) this.#remove(other, kept);
    }
  }

  #remove(snapshot: TenantSnapshot, kept: Kept<T>): void {
    this.#kept.delete(snapshot);
    this.#total -= kept.bytes;
    const left = (this.#bytesOfTenant.get(kept.tenantId) ?? 0) - kept.bytes;
    if (left > 0) this.#bytesOfTenant.set(kept.tenantId, left);
    else this.#bytesOfTenant.delete(kept.tenantId);
  }
}
