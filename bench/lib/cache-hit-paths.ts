import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import {
  type CacheRequest,
  createResponseCache,
  MemoryCacheStore,
  RedisCacheStore,
} from '@vantageedge/gateway/cache/index';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { tenantFor } from './scenarios.js';

/**
 * CPU per cache HIT, measured in this process (process.cpuUsage, user + system) over many hits:
 * `cache.lookup` + `cache.writeEntry` into a real ServerResponse whose socket discards the bytes.
 * - `l1`: the entry is in the in-process L1.
 * - `redis`: L1 off (1 byte), every hit reads the entry from Redis, one at a time (the Redis server's
 *   own CPU is not counted; the client side of the round trip is).
 * - `redis, 20 concurrent`: 20 lookups of the same key at once, as under load: they coalesce behind one
 *   GET (what the `cache-redis` scenario of `make bench` measured).
 * - `response only`: the same response written without the cache (the floor of both paths).
 */
export interface HitPathResult {
  name: string;
  cpu_us_per_hit: number;
  samples: number[];
}

const entryBody = Buffer.from('{"id":1,"title":"hello world","tags":["a","b"]}');
const originHeaders = {
  'content-type': 'application/json',
  date: 'Mon, 30 Nov 2026 12:00:00 GMT',
  etag: '"v1"',
  'cache-control': 'public, max-age=3600',
};

function discardingResponse(): ServerResponse {
  const socket = new Duplex({
    write(_chunk, _encoding, callback) {
      callback();
    },
    read() {},
  }) as unknown as Socket;
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  res.setHeader('x-request-id', 'bench-request');
  return res;
}

async function cpuPerHit(
  hits: number,
  samples: number,
  batch: number,
  hit: () => Promise<void>,
): Promise<number[]> {
  const run = async () => {
    const before = process.cpuUsage();
    for (let i = 0; i < hits; i += batch) {
      if (batch === 1) await hit();
      else await Promise.all(Array.from({ length: batch }, hit));
    }
    const used = process.cpuUsage(before);
    return Math.round(((used.user + used.system) / hits) * 100) / 100;
  };
  await run(); // warm-up (JIT)
  const results: number[] = [];
  for (let i = 0; i < samples; i++) results.push(await run());
  return results;
}

export async function measureCacheHitPaths(options: {
  redisUrl: string;
  hits: number;
  samples: number;
  log: (line: string) => void;
}): Promise<HitPathResult[]> {
  const snapshot = tenantFor(0, 'http://127.0.0.1:1', [
    { path_pattern: '/api/*', cache_policy: { ttl_seconds: 3600 } as never },
  ]);
  const policy = compileCachePolicy(snapshot.tenant_id, snapshot.routes[0]!)!;
  const request: CacheRequest = {
    method: 'GET',
    path: '/api/posts/1',
    query: '',
    headers: { host: 't0.localhost' },
  };
  const logger = createLogger({ service: 'bench', level: 'error' });
  const results: HitPathResult[] = [];
  const record = (name: string, samples: number[]) => {
    const sorted = [...samples].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    results.push({ name, cpu_us_per_hit: median, samples });
    options.log(`${name.padEnd(62)} ${median.toFixed(2).padStart(9)} µs CPU/hit`);
  };

  let redis: RedisClient | undefined = createRedisClient({
    url: options.redisUrl,
    commandTimeoutMs: 2_000,
    name: 'bench-micro',
  });
  try {
    await whenReady(redis, 2_000);
  } catch {
    options.log(`cache HIT from Redis: skipped (no Redis at ${options.redisUrl})`);
    redis.disconnect();
    redis = undefined;
  }
  const prefix = `ve-bench-micro:${Date.now()}:`;
  const paths: Array<{ name: string; l1Bytes: number; batch: number; shared: boolean }> = [
    {
      name: 'cache HIT from L1: lookup + write response',
      l1Bytes: 64 * 1024 * 1024,
      batch: 1,
      shared: false,
    },
    ...(redis
      ? [
          {
            name: 'cache HIT from Redis (L1 off): lookup + write response',
            l1Bytes: 1,
            batch: 1,
            shared: true,
          },
          {
            name: 'cache HIT from Redis (L1 off), 20 concurrent: coalesced',
            l1Bytes: 1,
            batch: 20,
            shared: true,
          },
        ]
      : []),
  ];
  for (const path of paths) {
    const store =
      path.shared && redis
        ? new RedisCacheStore(redis, { keyPrefix: `${prefix}${paths.indexOf(path)}:` })
        : new MemoryCacheStore({ maxBytes: 64 * 1024 * 1024 });
    const cache = createResponseCache({
      store,
      l1MaxBytes: path.l1Bytes,
      registry: createMetricsRegistry('bench', { defaultMetrics: false }),
      logger,
    });
    await cache.prepareTenant(policy.tenantId);
    const miss = await cache.lookup(policy, request, {});
    if (miss.outcome !== 'MISS' || !miss.fill)
      throw new Error(`cache bench setup: expected a MISS, got ${miss.outcome}`);
    await cache.store(miss.fill, 'GET', { status: 200, headers: originHeaders, body: entryBody });
    const hit = async () => {
      // As the cache stage does: no await when the lookup answers synchronously.
      const pending = cache.lookup(policy, request, {});
      const lookup = pending instanceof Promise ? await pending : pending;
      if (lookup.outcome !== 'HIT') throw new Error(`cache bench: expected a HIT, got ${lookup.outcome}`);
      cache.writeEntry(discardingResponse(), lookup.entry, 'HIT', 'GET');
    };
    record(path.name, await cpuPerHit(options.hits, options.samples, path.batch, hit));
    await cache.close();
  }
  record(
    'response only (same headers and body, no cache)',
    await cpuPerHit(options.hits, options.samples, 1, async () => {
      const res = discardingResponse();
      res.statusCode = 200;
      for (const [name, value] of Object.entries(originHeaders)) res.setHeader(name, value);
      res.setHeader('Content-Length', entryBody.length);
      res.end(entryBody);
    }),
  );
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
  return results;
}
