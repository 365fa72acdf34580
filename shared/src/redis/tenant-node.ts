import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import type { RedisClient } from './client.js';

/**
 * The Redis node serving a tenant's keys, as `host:port` (the Cluster client's name for it), or
 * undefined when that is not known: a single server (every tenant on it), or a Cluster client that has
 * not loaded the slot table yet.
 */
export type TenantNodeOf = (tenantId: string) => string | undefined;

/** Tenants whose slot is remembered; past it the memory starts over (tenants deleted long ago go). */
const MAX_REMEMBERED_TENANTS = 100_000;

const noNode: TenantNodeOf = () => undefined;

/**
 * Where a tenant's keys live. On a Redis Cluster every key of a tenant shares the `{tenant_id}` hash
 * tag, so all of them sit in one slot, served by one master: the slot is computed once per tenant and
 * looked up in the client's slot table (an array index) on every call, so a failover or a resharding
 * is followed as soon as the client has learnt it.
 */
export function tenantNodeLocator(client: RedisClient): TenantNodeOf {
  if (!(client instanceof Cluster)) return noNode;
  const slots = new Map<string, number>();
  return (tenantId) => {
    let slot = slots.get(tenantId);
    if (slot === undefined) {
      if (slots.size >= MAX_REMEMBERED_TENANTS) slots.clear();
      slot = calculateSlot(`{${tenantId}}`);
      slots.set(tenantId, slot);
    }
    return client.slots[slot]?.[0];
  };
}
