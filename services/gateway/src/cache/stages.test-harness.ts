import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import type { CompiledRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { request } from 'undici';
import { endToEndRequestHeaders } from '../proxy/hop-by-hop.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import { applyRateLimitHeaders, writeRateLimitRejection } from '../ratelimit/rejection.js';
import type { ResponseCache } from './response-cache.js';

/**
 * Test-only: the smallest proxy that calls the rate-limit and cache stages the way the gateway pipeline should
 * (rate limit → cache lookup → origin → cache store), in front of a real origin. Tenant and route come
 * from `x-test-tenant`; the authenticated caller from `x-test-user` / `x-test-key` (authentication is the pipeline's job).
 */
export interface StageRoute {
  limits: CompiledRateLimits | null;
  cache: CompiledCachePolicy | null;
}

export interface StagesGateway {
  url: string;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

async function fetchOrigin(origin: string, req: IncomingMessage, path: string) {
  const response = await request(origin + path, {
    method: req.method as 'GET',
    headers: {
      'x-test-user': req.headers['x-test-user'] ?? '',
      'x-test-tenant': req.headers['x-test-tenant'] ?? '',
    },
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(response.headers))
    if (value !== undefined) headers[name] = value;
  return { status: response.statusCode, headers, body };
}

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer,
  xCache: string,
) {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers))
    if (!HOP_BY_HOP.has(name) && name !== 'content-length') res.setHeader(name, value);
  res.setHeader('X-Cache', xCache);
  res.setHeader('Content-Length', body.length);
  res.end(body);
}

export async function startStagesGateway(options: {
  origin: string;
  routes: (tenant: string) => StageRoute;
  cache: ResponseCache;
  limiter: RateLimiter;
}): Promise<StagesGateway> {
  const { cache, limiter } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const tenant = String(req.headers['x-test-tenant'] ?? '');
    const route = options.routes(tenant);
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const query = queryAt < 0 ? '' : url.slice(queryAt + 1);
    const userId = req.headers['x-test-user'] as string | undefined;
    const apiKeyId = req.headers['x-test-key'] as string | undefined;

    if (route.limits && route.limits.descriptors.length > 0) {
      const decision = await limiter.check(route.limits, {
        tenantId: route.limits.tenantId,
        routeId: route.limits.routeId,
        userId,
        apiKeyId,
        clientIp: req.socket.remoteAddress ?? '',
      });
      if (decision.outcome !== 'allowed') return writeRateLimitRejection(res, decision);
      applyRateLimitHeaders(res, decision);
    }

    const method = req.method ?? 'GET';
    const policy = route.cache;
    if (!policy) {
      const upstream = await fetchOrigin(options.origin, req, url);
      return send(res, upstream.status, upstream.headers, upstream.body, 'BYPASS');
    }
    const lookup = await cache.lookup(
      policy,
      { method, path, query, headers: endToEndRequestHeaders(req.headers) },
      { userId, apiKeyId },
    );
    switch (lookup.outcome) {
      case 'HIT':
        return cache.writeEntry(res, lookup.entry, 'HIT', method);
      case 'STALE': {
        const revalidation = lookup.revalidation;
        if (revalidation) {
          void fetchOrigin(options.origin, req, url)
            .then((upstream) => cache.store(revalidation, 'GET', upstream))
            .catch(() => cache.abandon(revalidation));
        }
        return cache.writeEntry(res, lookup.entry, 'STALE', method);
      }
      case 'BYPASS': {
        const upstream = await fetchOrigin(options.origin, req, url);
        if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS')
          await cache.invalidatePath(policy, path);
        return send(res, upstream.status, upstream.headers, upstream.body, 'BYPASS');
      }
      case 'MISS': {
        let upstream: Awaited<ReturnType<typeof fetchOrigin>>;
        try {
          upstream = await fetchOrigin(options.origin, req, url);
          if (upstream.status >= 500 && lookup.staleIfError) throw new Error(`origin ${upstream.status}`);
        } catch (error) {
          if (lookup.fill) cache.abandon(lookup.fill);
          if (lookup.staleIfError) return cache.writeEntry(res, lookup.staleIfError, 'STALE', method);
          throw error;
        }
        if (lookup.fill) {
          const body = upstream.body.length <= policy.maxBodyBytes ? upstream.body : null;
          await cache.store(lookup.fill, method, {
            status: upstream.status,
            headers: upstream.headers,
            body,
          });
        }
        return send(res, upstream.status, upstream.headers, upstream.body, 'MISS');
      }
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.statusCode = 502;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A real origin: counts requests per path; behaviour selected by the path. */
export interface TestOrigin {
  url: string;
  hits(path: string): number;
  failing: boolean;
  close(): Promise<void>;
}

export async function startTestOrigin(): Promise<TestOrigin> {
  const counts = new Map<string, number>();
  const state = { failing: false };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    const n = (counts.get(url.pathname) ?? 0) + 1;
    counts.set(url.pathname, n);
    const respond = () => {
      if (state.failing) {
        res.statusCode = 503;
        return res.end('down');
      }
      const body = JSON.stringify({
        path: url.pathname,
        query: url.search,
        user: req.headers['x-test-user'] ?? null,
        tenant: req.headers['x-test-tenant'] ?? null,
        n,
      });
      res.setHeader('Content-Type', 'application/json');
      if (url.pathname.includes('/no-store')) res.setHeader('Cache-Control', 'no-store');
      if (url.pathname.includes('/private')) res.setHeader('Cache-Control', 'private, max-age=60');
      if (url.pathname.includes('/max-age-1')) res.setHeader('Cache-Control', 'public, max-age=1');
      if (url.pathname.includes('/cookie')) res.setHeader('Set-Cookie', 'session=abc; HttpOnly');
      if (url.pathname.includes('/error')) res.statusCode = 500;
      if (url.pathname.includes('/missing')) res.statusCode = 404;
      if (url.pathname.includes('/big')) return res.end('x'.repeat(4096));
      res.end(body);
    };
    if (url.pathname.includes('/slow')) setTimeout(respond, 200);
    else respond();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: (path) => counts.get(path) ?? 0,
    get failing() {
      return state.failing;
    },
    set failing(value: boolean) {
      state.failing = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
