import type { TenantSnapshot } from '../domain/gateway-config.js';

/**
 * A snapshot as gateways are sent it: its origins and routes without a `tags` member, as before tags
 * existed. Only the control plane reads tags (lists, config documents, rollbacks); sent, they would
 * spend the snapshot's size budget (up to 16 tags of 64 characters on each of 20,000 routes), and a
 * gateway of the release before tags would refuse every snapshot carrying the member. The snapshot
 * itself when nothing in it is tagged (the projector leaves untagged resources without the member).
 */
export function gatewayViewOf(snapshot: TenantSnapshot): TenantSnapshot {
  if (!snapshot.origins.some(hasTagsMember) && !snapshot.routes.some(hasTagsMember)) return snapshot;
  return { ...snapshot, origins: snapshot.origins.map(untagged), routes: snapshot.routes.map(untagged) };
}

const hasTagsMember = (item: { tags?: readonly string[] | undefined }): boolean => item.tags !== undefined;

/**
 * Each frozen resource's view, itself frozen: the control plane measures a snapshot on every command,
 * and a frozen resource's size is counted once (json-bytes.ts), so an unchanged tagged route costs
 * no more than an untagged one.
 */
const frozenViews = new WeakMap<object, object>();

function untagged<T extends { tags?: readonly string[] | undefined }>(item: T): T {
  if (item.tags === undefined) return item;
  const known = frozenViews.get(item);
  if (known !== undefined) return known as T;
  const { tags: _tags, ...view } = item;
  if (Object.isFrozen(item)) frozenViews.set(item, Object.freeze(view));
  return view as T;
}
