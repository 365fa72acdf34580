import type { ServerResponse } from 'node:http';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { duplicateForSubscribe } from '@vantageedge/shared/redis/client';
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import type { Cluster, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type CacheEntry, decodeEntry, encodeEntry, entrySize } from './cache-entry.js';
import { type CacheIdentity, type CacheRequest, pathDigest, variantDigest } from './cache-key.js';
import {
  freshnessFor,
  isPerRequestHeader,
  requestBypassReason,
  storedHeaders,
  type UpstreamResponse,
} from './cacheability.js';
import type { CompiledCachePolicy } from './compile-cache-policy.js';

export type CacheOutcome = 'HIT' | 'STALE' | 'MISS' | 'BYPASS';

/** The right to fill one key: given to exactly one request (the leader) per key and replica at a time. */
export interface CacheFill {
  readonly key: string;
  readonly policy: CompiledCachePolicy;
  readonly pathIndexKey: string;
}

export type CacheLookup =
  | { readonly outcome: 'HIT'; readonly entry: CacheEntry; readonly key: string }
  /** Served stale (stale-while-revalidate). When `revalidation` is set this request should refresh the
   *  entry in the background: fetch the origin and call store(revalidation, response). */
  | {
      readonly outcome: 'STALE';
      readonly entry: CacheEntry;
      readonly key: string;
      readonly revalidation: CacheFill | null;
    }
  /** Go to the origin. With `fill`, this request is the leader: store(fill, …) or abandon(fill) afterwards;
   *  concurrent requests for the key wait for it. `staleIfError`: serve it if the origin fails. */
  | {
      readonly outcome: 'MISS';
      readonly key: string;
      readonly fill: CacheFill | null;
      readonly staleIfError: CacheEntry | null;
    }
  | { readonly outcome: 'BYPASS'; readonly reason: string };

export interface ResponseCacheOptions {
  /** Shared by replicas; omit for the in-memory-only mode. */
  redis?: Redis | Cluster | undefined;
  /** L1 (per process) size bound in bytes. */
  l1MaxBytes: number;
  registry: Registry;
  logger: Logger;
  /** Prepended to every Redis key and the purge channel (tests isolate themselves with it). */
  keyPrefix?: string | undefined;
  /** How long followers wait for a leader's origin response before going to the origin themselves. */
  coalesceTimeoutMs?: number | undefined;
  circuitFailures?: number | undefined;
  halfOpenAfterMs?: number | undefined;
  now?: () => number;
}

export interface ResponseCache {
  /** Load a tenant's purge generations (call when its snapshot is applied); lookups bypass until then. */
  prepareTenant(tenantId: string): Promise<void>;
  lookup(policy: CompiledCachePolicy, request: CacheRequest, identity: CacheIdentity): Promise<CacheLookup>;
  /** Stores the leader's origin response if the rules allow; wakes followers either way. */
  store(fill: CacheFill, method: string, response: UpstreamResponse): Promise<boolean>;
  /** The leader got no usable response (origin error): followers go to the origin themselves. */
  abandon(fill: CacheFill): void;
  /**
   * Writes a cached response: status, stored headers (never per-request ones: the current request's
   * X-Request-Id, RateLimit etc. already set on `res` stay), Age, X-Cache, body (none for HEAD).
   */
  writeEntry(res: ServerResponse, entry: CacheEntry, outcome: 'HIT' | 'STALE', method: string): void;
  /** Unsafe method on a path: drop every cached variant of that path (all replicas). */
  invalidatePath(policy: CompiledCachePolicy, path: string): Promise<void>;
  purgeRoute(tenantId: string, routeId: string): Promise<void>;
  purgeTenant(tenantId: string): Promise<void>;
  close(): Promise<void>;
}

interface Generations {
  tenant: number;
  routes: Map<string, number>;
}

interface Flight {
  promise: Promise<CacheEntry | null>;
  resolve: (entry: CacheEntry | null) => void;
}

type PurgeMessage =
  | { kind: 'route'; tenantId: string; routeId: string; generation: number }
  | { kind: 'tenant'; tenantId: string; generation: number }
  | { kind: 'path'; pathIndexKey: string };

const TENANT_FIELD = '_tenant';

/**
 * Response cache: a per-process L1 (LRU bounded by bytes) in front of Redis shared by replicas.
 *
 * Keys: `<prefix>c:{<tenant>}:<tenant generation>:<route>:<route generation>:<path digest>:<variant digest>`.
 * Purges bump a generation (a Redis hash per tenant, mirrored in every replica and pushed over pub/sub),
 * so old entries become unreachable at once without SCAN and expire by TTL. Unsafe methods drop a
 * path's variants through a per-path index set. Redis entries expire after fresh + max(stale) time;
 * Redis itself should run with `maxmemory-policy allkeys-lru` (or volatile-lru: every key has a TTL).
 */
export function createResponseCache(options: ResponseCacheOptions): ResponseCache {
  const { redis, logger } = options;
  const prefix = options.keyPrefix ?? '';
  const channel = `${prefix}vantageedge:cache:purge`;
  const now = options.now ?? Date.now;
  const coalesceTimeoutMs = options.coalesceTimeoutMs ?? 10_000;
  const generations = new Map<string, Generations>();
  const loading = new Map<string, Promise<void>>();
  const flights = new Map<string, Flight>();
  /** L1 keys per path index key, so a path invalidation finds its variants without scanning the L1. */
  const l1ByPath = new Map<string, Set<string>>();
  const l1PathOf = new Map<string, string>();

  const l1 = new LRUCache<string, CacheEntry>({
    maxSize: options.l1MaxBytes,
    sizeCalculation: (entry) => Math.max(1, entrySize(entry)),
    dispose: (_entry, key) => {
      const pathKey = l1PathOf.get(key);
      if (pathKey === undefined) return;
      l1PathOf.delete(key);
      const keys = l1ByPath.get(pathKey);
      keys?.delete(key);
      if (keys?.size === 0) l1ByPath.delete(pathKey);
    },
  });

  const breaker = circuitBreaker(handleAll, {
    halfOpenAfter: options.halfOpenAfterMs ?? 1_000,
    breaker: new ConsecutiveBreaker(options.circuitFailures ?? 3),
  });
  const halfOpenAfterMs = options.halfOpenAfterMs ?? 1_000;
  let openedAt = 0;
  // cockatiel only moves Open → HalfOpen inside execute(); skip Redis ourselves until a trial is due.
  const circuitSkips = () => breaker.state === CircuitState.Open && Date.now() - openedAt < halfOpenAfterMs;
  breaker.onBreak(() => {
    openedAt = Date.now();
    logger.warn('cache store circuit opened; cache bypassed while Redis is down');
  });
  breaker.onReset(() => logger.info('cache store circuit closed'));

  const lookups = new Counter({
    name: 'vantageedge_gateway_cache_lookups_total',
    help: 'Cache lookups by outcome (HIT, STALE, MISS, BYPASS)',
    labelNames: ['tenant', 'route', 'outcome'],
    registers: [options.registry],
  });
  const storeErrors = new Counter({
    name: 'vantageedge_gateway_cache_store_errors_total',
    help: 'Redis calls of the cache that failed or were skipped (circuit open)',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  const coalesced = new Counter({
    name: 'vantageedge_gateway_cache_coalesced_total',
    help: 'Requests that waited for another request to fetch the same key from the origin',
    registers: [options.registry],
  });
  const purges = new Counter({
    name: 'vantageedge_gateway_cache_purges_total',
    help: 'Purges applied by this replica (route, tenant, path)',
    labelNames: ['kind'],
    registers: [options.registry],
  });
  const totals = new Map<string, { tenant: string; route: string; hits: number; all: number }>();
  new Gauge({
    name: 'vantageedge_gateway_cache_hit_ratio',
    help: 'HIT+STALE / (HIT+STALE+MISS) since start, per tenant and route',
    labelNames: ['tenant', 'route'],
    registers: [options.registry],
    collect() {
      for (const { tenant, route, hits, all } of totals.values()) {
        if (all > 0) this.set({ tenant, route }, hits / all);
      }
    },
  });
  const count = (policy: CompiledCachePolicy, outcome: CacheOutcome) => {
    lookups.labels({ tenant: policy.tenantId, route: policy.routeId, outcome }).inc();
    if (outcome === 'BYPASS') return;
    const id = `${policy.tenantId}/${policy.routeId}`;
    let total = totals.get(id);
    if (!total) {
      total = { tenant: policy.tenantId, route: policy.routeId, hits: 0, all: 0 };
      totals.set(id, total);
    }
    total.all++;
    if (outcome !== 'MISS') total.hits++;
  };

  const generationKey = (tenantId: string) => `${prefix}c:{${tenantId}}:gen`;

  const loadGenerations = async (tenantId: string): Promise<void> => {
    if (!redis) {
      if (!generations.has(tenantId)) generations.set(tenantId, { tenant: 0, routes: new Map() });
      return;
    }
    const stored = await redis.hgetall(generationKey(tenantId));
    const loaded: Generations = { tenant: Number(stored[TENANT_FIELD] ?? 0), routes: new Map() };
    for (const [field, value] of Object.entries(stored))
      if (field !== TENANT_FIELD) loaded.routes.set(field, Number(value));
    const known = generations.get(tenantId);
    // Never go back: a pub/sub message may have arrived while loading.
    if (known) {
      loaded.tenant = Math.max(loaded.tenant, known.tenant);
      for (const [route, generation] of known.routes)
        loaded.routes.set(route, Math.max(generation, loaded.routes.get(route) ?? 0));
    }
    generations.set(tenantId, loaded);
  };

  const prepareTenant = (tenantId: string): Promise<void> => {
    let pending = loading.get(tenantId);
    if (!pending) {
      pending = loadGenerations(tenantId).finally(() => loading.delete(tenantId));
      loading.set(tenantId, pending);
    }
    return pending;
  };

  const dropL1 = (match: (key: string) => boolean) => {
    for (const key of l1.keys()) if (match(key)) l1.delete(key);
  };

  const applyPurge = (message: PurgeMessage) => {
    purges.labels({ kind: message.kind }).inc();
    if (message.kind === 'path') {
      for (const key of [...(l1ByPath.get(message.pathIndexKey) ?? [])]) l1.delete(key);
      return;
    }
    const known = generations.get(message.tenantId);
    if (!known) return;
    const tenantPrefix = `${prefix}c:{${message.tenantId}}:`;
    if (message.kind === 'tenant') {
      known.tenant = Math.max(known.tenant, message.generation);
      dropL1((key) => key.startsWith(tenantPrefix));
    } else {
      known.routes.set(message.routeId, Math.max(known.routes.get(message.routeId) ?? 0, message.generation));
      dropL1((key) => key.startsWith(tenantPrefix) && key.includes(`:${message.routeId}:`));
    }
  };

  let subscriber: Redis | Cluster | null = null;
  if (redis) {
    subscriber = duplicateForSubscribe(redis);
    subscriber.on('error', () => {});
    subscriber.on('message', (_channel: string, text: string) => {
      try {
        applyPurge(JSON.parse(text) as PurgeMessage);
      } catch (error) {
        logger.warn('ignored malformed cache purge message', { error: (error as Error).message });
      }
    });
    // After a reconnect purge messages may have been missed: reload every known tenant's generations.
    subscriber.on('ready', () => {
      for (const tenantId of generations.keys()) void loadGenerations(tenantId).catch(() => {});
    });
    void subscriber
      .subscribe(channel)
      .catch((error: Error) => logger.warn('cache purge subscribe failed', { error: error.message }));
  }

  const publish = async (message: PurgeMessage) => {
    applyPurge(message);
    if (redis) await redis.publish(channel, JSON.stringify(message));
  };

  const keysFor = (policy: CompiledCachePolicy, path: string, variant: string, known: Generations) => {
    const base = `${prefix}c:{${policy.tenantId}}:${known.tenant}:${policy.routeId}:${known.routes.get(policy.routeId) ?? 0}:${pathDigest(path)}`;
    return { key: `${base}:${variant}`, pathIndexKey: `${base}:idx` };
  };

  const remember = (key: string, pathIndexKey: string, entry: CacheEntry) => {
    l1.set(key, entry);
    if (!l1.has(key)) return; // larger than the whole L1
    l1PathOf.set(key, pathIndexKey);
    let keys = l1ByPath.get(pathIndexKey);
    if (!keys) {
      keys = new Set();
      l1ByPath.set(pathIndexKey, keys);
    }
    keys.add(key);
  };

  const startFlight = (key: string): void => {
    let resolve: (entry: CacheEntry | null) => void = () => {};
    const promise = new Promise<CacheEntry | null>((r) => {
      resolve = r;
    });
    const flight = { promise, resolve };
    flights.set(key, flight);
    // A leader that never calls store/abandon must not block the key forever.
    setTimeout(() => {
      if (flights.get(key) === flight) finishFlight(key, null);
    }, coalesceTimeoutMs).unref();
  };

  const finishFlight = (key: string, entry: CacheEntry | null) => {
    const flight = flights.get(key);
    if (!flight) return;
    flights.delete(key);
    flight.resolve(entry);
  };

  const waitFor = (flight: Flight): Promise<CacheEntry | null> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), coalesceTimeoutMs);
      void flight.promise.then((entry) => {
        clearTimeout(timer);
        resolve(entry);
      });
    });

  const readShared = async (key: string): Promise<CacheEntry | null | 'unavailable'> => {
    if (!redis) return null;
    if (circuitSkips()) {
      storeErrors.labels({ reason: 'circuit_open' }).inc();
      return 'unavailable';
    }
    try {
      const buffer = await breaker.execute(() => redis.getBuffer(key));
      return buffer ? decodeEntry(buffer) : null;
    } catch (error) {
      storeErrors.labels({ reason: error instanceof BrokenCircuitError ? 'circuit_open' : 'error' }).inc();
      return 'unavailable';
    }
  };

  const lookup = async (
    policy: CompiledCachePolicy,
    request: CacheRequest,
    identity: CacheIdentity,
  ): Promise<CacheLookup> => {
    const bypass = requestBypassReason(policy, request);
    if (bypass) {
      count(policy, 'BYPASS');
      return { outcome: 'BYPASS', reason: bypass };
    }
    const known = generations.get(policy.tenantId);
    if (!known) {
      void prepareTenant(policy.tenantId).catch(() => {});
      count(policy, 'BYPASS');
      return { outcome: 'BYPASS', reason: 'warming' };
    }
    const variant = variantDigest(policy, request, identity);
    if (variant === null) {
      count(policy, 'BYPASS');
      return { outcome: 'BYPASS', reason: 'anonymous_on_per_caller_route' };
    }
    const { key, pathIndexKey } = keysFor(policy, request.path, variant, known);

    const fill: CacheFill = { key, policy, pathIndexKey };
    let entry: CacheEntry | null = l1.get(key) ?? null;
    const at = now();
    if (entry === null || at - entry.storedAt >= entry.freshMs) {
      const flight = flights.get(key);
      if (flight) {
        // Another request is already fetching this key from the origin (or revalidating it).
        if (entry && at - entry.storedAt < entry.freshMs + entry.staleWhileRevalidateMs) {
          count(policy, 'STALE');
          return { outcome: 'STALE', entry, key, revalidation: null };
        }
        coalesced.inc();
        const led = await waitFor(flight);
        if (led) {
          count(policy, 'HIT');
          return { outcome: 'HIT', entry: led, key };
        }
        count(policy, 'MISS');
        const stale = entry && at - entry.storedAt < entry.freshMs + entry.staleIfErrorMs ? entry : null;
        return { outcome: 'MISS', key, fill: null, staleIfError: stale };
      }
      // Claim the key before any await so concurrent misses coalesce behind this request.
      startFlight(key);
      if (entry === null) {
        const shared = await readShared(key);
        if (shared === 'unavailable') {
          finishFlight(key, null);
          count(policy, 'BYPASS');
          return { outcome: 'BYPASS', reason: 'store_unavailable' };
        }
        if (shared) remember(key, pathIndexKey, shared);
        entry = shared;
      }
    }
    if (entry) {
      const age = now() - entry.storedAt;
      if (age < entry.freshMs) {
        finishFlight(key, entry);
        count(policy, 'HIT');
        return { outcome: 'HIT', entry, key };
      }
      if (age < entry.freshMs + entry.staleWhileRevalidateMs) {
        // This request holds the flight: it revalidates in the background while everyone gets STALE.
        count(policy, 'STALE');
        return { outcome: 'STALE', entry, key, revalidation: fill };
      }
      count(policy, 'MISS');
      return {
        outcome: 'MISS',
        key,
        fill,
        staleIfError: age < entry.freshMs + entry.staleIfErrorMs ? entry : null,
      };
    }
    count(policy, 'MISS');
    return { outcome: 'MISS', key, fill, staleIfError: null };
  };

  const store = async (fill: CacheFill, method: string, response: UpstreamResponse): Promise<boolean> => {
    const { policy } = fill;
    const freshness = freshnessFor(policy, method, response);
    if ('notStored' in freshness) {
      finishFlight(fill.key, null);
      return false;
    }
    const entry: CacheEntry = {
      status: response.status,
      headers: storedHeaders(response.headers, policy.cacheSetCookie),
      body: response.body!,
      storedAt: now(),
      freshMs: freshness.freshMs,
      staleWhileRevalidateMs: policy.staleWhileRevalidateMs,
      staleIfErrorMs: policy.staleIfErrorMs,
    };
    remember(fill.key, fill.pathIndexKey, entry);
    finishFlight(fill.key, entry);
    if (!redis) return true;
    const ttl = entry.freshMs + Math.max(entry.staleWhileRevalidateMs, entry.staleIfErrorMs);
    try {
      await breaker.execute(() =>
        redis
          .multi()
          .set(fill.key, encodeEntry(entry), 'PX', ttl)
          .sadd(fill.pathIndexKey, fill.key)
          .pexpire(fill.pathIndexKey, ttl)
          .exec(),
      );
    } catch (error) {
      storeErrors.labels({ reason: error instanceof BrokenCircuitError ? 'circuit_open' : 'error' }).inc();
    }
    return true;
  };

  const bumpGeneration = async (tenantId: string, field: string): Promise<number> => {
    if (!redis) {
      const known = generations.get(tenantId) ?? { tenant: 0, routes: new Map<string, number>() };
      generations.set(tenantId, known);
      return field === TENANT_FIELD ? known.tenant + 1 : (known.routes.get(field) ?? 0) + 1;
    }
    return redis.hincrby(generationKey(tenantId), field, 1);
  };

  return {
    prepareTenant,
    lookup,
    store,
    abandon(fill) {
      finishFlight(fill.key, null);
    },
    writeEntry(res, entry, outcome, method) {
      res.statusCode = entry.status;
      // Stored headers never override this request's own (X-Request-Id, RateLimit, …); the filter also
      // covers entries stored by older versions that kept per-request headers.
      for (const [name, value] of entry.headers)
        if (!isPerRequestHeader(name.toLowerCase())) res.setHeader(name, value);
      res.setHeader('Age', Math.max(0, Math.floor((now() - entry.storedAt) / 1000)));
      res.setHeader('X-Cache', outcome);
      res.setHeader('Content-Length', entry.body.length);
      if (method === 'HEAD') res.end();
      else res.end(entry.body);
    },
    async invalidatePath(policy, path) {
      const known = generations.get(policy.tenantId);
      if (!known) return;
      const { pathIndexKey } = keysFor(policy, path, '', known);
      if (redis) {
        try {
          const keys = await breaker.execute(() => redis.smembers(pathIndexKey));
          await breaker.execute(() => redis.del(pathIndexKey, ...keys));
        } catch (error) {
          storeErrors
            .labels({ reason: error instanceof BrokenCircuitError ? 'circuit_open' : 'error' })
            .inc();
        }
      }
      await publish({ kind: 'path', pathIndexKey }).catch(() => {});
    },
    async purgeRoute(tenantId, routeId) {
      await prepareTenant(tenantId);
      const generation = await bumpGeneration(tenantId, routeId);
      await publish({ kind: 'route', tenantId, routeId, generation });
    },
    async purgeTenant(tenantId) {
      await prepareTenant(tenantId);
      const generation = await bumpGeneration(tenantId, TENANT_FIELD);
      await publish({ kind: 'tenant', tenantId, generation });
    },
    async close() {
      for (const key of [...flights.keys()]) finishFlight(key, null);
      if (subscriber) subscriber.disconnect();
    },
  };
}
