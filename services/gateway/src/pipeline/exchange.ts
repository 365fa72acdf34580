import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { ANONYMOUS, type Identity } from '../auth/identity.js';
import type { CacheEntry } from '../cache/cache-entry.js';
import type { CacheFill, FillBody } from '../cache/response-cache.js';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';

/**
 * The typed per-request context every lifecycle step and stage reads and adds to, in order:
 * tenant → route → auth → rate limit → cache → balance → proxy. One object per request with a fixed
 * shape (all fields set in the constructor); a stage that keeps per-request state has a field here.
 */
export class GatewayExchange {
  readonly startedAt = performance.now();
  tenant: CompiledTenant | undefined = undefined;
  route: CompiledRoute | undefined = undefined;
  identity: Identity = ANONYMOUS;
  /** Normalised path (what was matched and what is forwarded, before strip_prefix). */
  path = '';
  /** The raw query string including its leading "?", or ''. */
  query = '';
  /** Set when the gateway itself answered with an error. */
  errorCode: string | undefined = undefined;
  upstreamTarget: string | undefined = undefined;
  upstreamMs: number | undefined = undefined;
  /** Filled in by the rate-limit and cache stages for the access log ("allowed", "limited", "hit", …). */
  rateLimitOutcome: string | undefined = undefined;
  cacheOutcome: string | undefined = undefined;
  /** The cache stage's right to store this request's origin response (a MISS leader), until used. */
  cacheFill: CacheFill | undefined = undefined;
  /**
   * The client's own conditional headers (If-None-Match, If-Modified-Since) while the cache revalidates
   * a stale entry with its validators instead: a 304 from the origin is answered against them.
   */
  cacheClientConditional: IncomingHttpHeaders | undefined = undefined;
  /** A stale entry the cache serves if the origin fails (stale-if-error), while the request is a MISS. */
  cacheStaleIfError: CacheEntry | undefined = undefined;
  /** The MISS leader's response body being collected for the cache, until complete. */
  cacheFillBody: FillBody | undefined = undefined;
  span: Span | undefined = undefined;
  traceId: string | undefined = undefined;

  /** The socket's address, and whether it is one of the trusted proxies (GATEWAY_TRUSTED_PROXIES). */
  peerIp = '';
  peerTrusted = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly clientIp: string,
  ) {}
}
