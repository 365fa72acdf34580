import type { IncomingHttpHeaders } from 'node:http';
import {
  type PurgeGenerations,
  tagIndexKey,
  tenantKeyspace,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { pathDigest, varySelector } from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { ENCODING_VARIANTS } from '@vantageedge/shared/http/accept-encoding';
import type { CacheEntry } from './cache-entry.js';
import type { PolicyState } from './lookup-counts.js';

/**
 * `c:{<tenant>}:<tenant gen>:<route>:<route gen>:<path digest>`: the URL keys and path index below it.
 * The prefix is rebuilt only when the generations changed since the policy's last lookup.
 */
export function pathBase(
  policy: CompiledCachePolicy,
  state: PolicyState,
  path: string,
  known: PurgeGenerations,
): string {
  const routeGeneration = known.routes.get(policy.routeId) ?? 0;
  if (state.tenantGeneration !== known.tenant || state.routeGeneration !== routeGeneration) {
    state.keyPrefix = `${tenantKeyspace('', policy.tenantId)}${known.tenant}:${policy.routeId}:${routeGeneration}:`;
    state.tenantGeneration = known.tenant;
    state.routeGeneration = routeGeneration;
  }
  return state.keyPrefix + pathDigest(path);
}

/** The key of one variant of a URL whose responses vary on `varyOn`. */
export function variantKey(urlKey: string, varyOn: readonly string[], headers: IncomingHttpHeaders): string {
  return `${urlKey}:${varySelector(varyOn, headers)}`;
}

/**
 * How many variants a URL whose responses vary on `varyOn` keeps (the Vary cap, GATEWAY_CACHE_MAX_VARIANTS).
 * Varying on Accept-Encoding alone, every set of codings a client may accept has room (ENCODING_VARIANTS):
 * a client cycling through the sets no browser sends never takes the variant browsers get.
 */
export function variantCap(varyOn: readonly string[], maxVariants: number): number {
  return varyOn.length === 1 && varyOn[0] === 'accept-encoding'
    ? Math.max(maxVariants, ENCODING_VARIANTS)
    : maxVariants;
}

/** The keys of the tag indexes the store lists `entry` in (purge by tag). */
export function tagIndexKeys(policy: CompiledCachePolicy, entry: CacheEntry): string[] {
  return entry.tags.map((tag) => tagIndexKey('', policy.tenantId, tag));
}
