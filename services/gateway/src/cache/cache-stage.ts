import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { requestHeaderWrittenByGateway } from '@vantageedge/shared/domain/route-policies';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { isEventStream } from '@vantageedge/shared/http/event-streams';
import type { EncodedSlashPolicy } from '@vantageedge/shared/routing/normalize-path';
import { AmbiguousPath } from '@vantageedge/shared/routing/route-matcher';
import type { CompiledOrigin, CompiledRoute } from '../config/compiled-tenant.js';
import { requestAuthority } from '../http/request-authority.js';
import { requestBodyFraming } from '../http/request-body.js';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { BodyTap, ResponseHead, RoutePolicy, RouteStage, StageResult } from '../pipeline/stage.js';
import {
  clientProto,
  connectionProto,
  originFacingForwarding,
  originFacingHost,
} from '../proxy/forwarded-headers.js';
import { endToEndRequestHeaders } from '../proxy/hop-by-hop.js';
import { applyHeaderTransformToResponse } from '../transforms/header-transform.js';
import { refreshInBackground } from './background-refresh.js';
import type { CacheEntry } from './cache-entry.js';
import {
  CLIENT_CONDITIONAL_FIELDS,
  clientConditional,
  clientHasCurrentCopy,
  isConditional,
  NOT_MODIFIED_HEADERS,
  ORIGIN_ONLY_REQUEST_FIELDS,
  removeClientFields,
} from './client-conditional.js';
import { carriesCredentialQuery } from './client-credentials.js';
import {
  type InvalidationTarget,
  invalidatesOnStatus,
  invalidationTargets,
  isUnsafeMethod,
} from './invalidation-targets.js';
import type { CacheFill, CacheLookup, ResponseCache } from './response-cache.js';
import { revalidationHeaders } from './revalidation.js';

/** Each route's compiled cache policy by its cache stage: a Location may name another route's entries. */
const policyOfStage = new WeakMap<RouteStage, CompiledCachePolicy>();

/** Whether the compiled route has a cache stage. */
function caches(route: CompiledRoute): boolean {
  return route.stages.all.some((stage) => policyOfStage.has(stage));
}

/** The same-host URIs an unsafe method's response named in Location / Content-Location, until it ends. */
const namedTargets = new WeakMap<GatewayExchange, InvalidationTarget[]>();

/**
 * The origin a split route's MISS leader was keyed on (the split's choice), until it answers: when that
 * origin had no available target and another of the split's answered, the answer is not stored under
 * the chosen origin's key.
 */
const keyedOrigins = new WeakMap<GatewayExchange, CompiledOrigin>();

export interface CacheStageOptions {
  /** How request paths are normalised (GATEWAY_ENCODED_SLASHES): Location paths are read the same way. */
  readonly encodedSlashes?: EncodedSlashPolicy;
}

function incomingHeaders(headers: OutgoingHttpHeaders): IncomingHttpHeaders {
  const converted: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    converted[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return converted as IncomingHttpHeaders;
}

/**
 * The response cache as a route stage, compiled onto every route with an enabled cache policy (after
 * the rate-limit stage); a route without one gets no stage.
 * - Request hook: HIT/STALE are answered here, synchronously when the entry is in the L1; a MISS or
 *   BYPASS goes on to the origin.
 * - Response hook: the MISS leader's origin response is offered to the cache (cache.beginFill decides
 *   whether it is collected) and its body tapped while it streams; complete, it is stored.
 * - End hook: a fill never completed (origin failure, client gone) is released so coalesced followers
 *   go on; an unsafe method answered 2xx/3xx drops the cached variants of its path and of the
 *   same-host URIs its response names in Location / Content-Location.
 * - STALE with a revalidation fill: refreshed in the background (background-refresh.ts).
 * - Revalidation: a stale entry's validators replace the client's conditional headers; the origin's 304
 *   is answered from the entry (REVALIDATED). stale-if-error: an origin 5xx (response hook) or no
 *   response at all (onOriginFailure) is answered with the stale entry.
 */
export function createCacheStage(cache: ResponseCache, options: CacheStageOptions = {}): RoutePolicy {
  const encodedSlashes = options.encodedSlashes ?? 'reject';
  return {
    name: 'cache',
    readsOrigins: false,
    // Its share of the cache, and who its routes admit (compileCachePolicy's audience).
    compiledFrom: ({ clerk_org_id, settings: { cache, ip_rules, oidc } }) =>
      JSON.stringify([cache ?? null, ip_rules, oidc && [oidc.issuer, oidc.audience], clerk_org_id]),
    compileRoute({ tenant, route, routeMetrics }) {
      const compiled = compileCachePolicy(tenant.id, route, tenant);
      if (compiled === null || keysOnGatewayValue(compiled)) return null;
      const policy =
        routeMetrics === undefined ? compiled : { ...compiled, metricsRoute: routeMetrics.label };
      const stage = cacheStage(cache, policy, encodedSlashes);
      policyOfStage.set(stage, policy);
      return stage;
    },
    tenantApplied(tenant) {
      // Lookups bypass the cache until the tenant's purge generations are loaded.
      cache.prepareTenant(tenant.id).catch(() => {});
    },
    tenantRetired(previous, replacement) {
      // Routes that still cache keep their totals (their new policies count on into them). A route
      // gone, or left without a cache policy (it may be deleted later, with no policy to retire then),
      // takes its totals with it.
      const caching =
        replacement && new Set(replacement.routes.filter(caches).map((route) => route.config.id));
      if (replacement === undefined) cache.tenantRemoved(previous.id);
      else {
        // A lowered bound trims the tenant's share now, not only as its next writes evict. A caching
        // tenant's other configs are told too (nothing is over a bound left as it was): the shared store
        // then knows this version applied, and a replica applying an older one later (one this replica
        // skipped: superseded while it applied, or compacted away) does not trim with that one's bound.
        const bound = replacement.snapshot.tenant.settings.cache?.max_bytes;
        if (bound !== previous.snapshot.tenant.settings.cache?.max_bytes || (caching?.size ?? 0) > 0)
          void cache.tenantBoundChanged(replacement.id, bound, replacement.version);
      }
      for (const route of previous.routes) {
        if (caching?.has(route.config.id)) continue;
        for (const stage of route.stages.all) {
          const policy = policyOfStage.get(stage);
          if (policy !== undefined) cache.routeRetired(policy);
        }
      }
    },
  };
}

/**
 * The policy keys on a request header the gateway writes toward the origin (vary_headers naming
 * X-Real-IP, X-Forwarded-For, an identity header, …, or X_Real_IP, which CGI-style origins read as
 * X-Real-IP): the key could only read the client's own value
 * (absent for nearly everyone, or spoofed) while the origin answers the gateway's, so one client's answer
 * would be served to the others. The control plane refuses such a policy; one stored before that is
 * served uncached. (A header the gateway only drops, such as X-Api-Key, may be keyed on: the origin's
 * answer does not depend on it.)
 */
function keysOnGatewayValue(policy: CompiledCachePolicy): boolean {
  return policy.varyHeaders.some((name) => requestHeaderWrittenByGateway(asOriginsReadIt(name)));
}

function cacheStage(
  cache: ResponseCache,
  policy: CompiledCachePolicy,
  encodedSlashes: EncodedSlashPolicy,
): RouteStage {
  return {
    name: 'cache',
    onRequest(exchange) {
      const { req, identity } = exchange;
      const query = exchange.query.startsWith('?') ? exchange.query.slice(1) : exchange.query;
      const lookup = cache.lookup(
        policy,
        // Keyed on the scheme and host the origin is told the client asked for (the host as spelled:
        // an origin may reflect its port into links), a trusted proxy's port and prefix, and on the
        // end-to-end headers (none the client named in Connection). A response varying on a header the
        // gateway writes toward the origin (X-Forwarded-Proto, X-Real-IP, …) is never stored
        // (vary_gateway_header). A request with a body bypasses: the key cannot hold it.
        {
          method: req.method ?? 'GET',
          scheme: clientProto(req.headers, connectionProto(req), exchange.peerTrusted),
          host: originFacingHost(req.headers, exchange.peerTrusted),
          forwarding: originFacingForwarding(req.headers, exchange.peerTrusted),
          origin: exchange.origin?.config.id,
          path: exchange.path,
          query,
          headers: endToEndRequestHeaders(req.headers),
          routeHeaders: exchange.routeRequestHeaders,
          hasBody: requestBodyFraming(req) !== 'none',
          credentialQuery: credentialQueryUnkeyed(policy, exchange),
        },
        { userId: identity.principal },
      );
      if (exchange.origin !== undefined) keyedOrigins.set(exchange, exchange.origin);
      if (lookup instanceof Promise) return lookup.then((answer) => respond(cache, exchange, answer));
      return respond(cache, exchange, lookup);
    },
    onResponse(exchange, head) {
      const method = exchange.req.method ?? 'GET';
      if (isUnsafeMethod(method) && invalidatesOnStatus(head.statusCode)) {
        const authority = requestAuthority(exchange.req.headers);
        const { path, query } = exchange;
        const targets = invalidationTargets({ authority, path, query }, head.headers, encodedSlashes);
        if (targets.length > 0) namedTargets.set(exchange, targets);
      }
      if (exchange.cacheStaleIfError !== undefined && ORIGIN_ERRORS.has(head.statusCode)) {
        // stale-if-error (RFC 5861 §4): the origin answered with an error; the stale entry is better.
        serveStaleIfError(cache, exchange);
        return undefined;
      }
      const fill = exchange.cacheFill;
      if (fill === undefined) return undefined;
      const keyedOrigin = keyedOrigins.get(exchange);
      const revalidated = head.statusCode === 304 && fill.revalidating !== null;
      if (keyedOrigin !== undefined && keyedOrigin !== exchange.origin && !revalidated) {
        // The split fell back to another origin: its answer is not the chosen origin's to store.
        exchange.cacheFill = undefined;
        cache.abandon(fill);
        return undefined;
      }
      fill.varyOriginByGateway = exchange.varyOriginByGateway;
      return fillingTap(cache, exchange, fill, head);
    },
    onOriginFailure(exchange) {
      if (exchange.cacheStaleIfError === undefined) return false;
      serveStaleIfError(cache, exchange);
      return true;
    },
    onEnd(exchange) {
      if (exchange.cacheFillBody !== undefined) {
        // The body never completed (origin failure, client gone): release its buffer and the followers.
        exchange.cacheFillBody.abort();
        exchange.cacheFillBody = undefined;
      }
      if (exchange.cacheFill !== undefined) {
        // The origin failed or the client left before the body was complete: release the followers.
        cache.abandon(exchange.cacheFill);
        exchange.cacheFill = undefined;
      }
      const named = namedTargets.get(exchange);
      namedTargets.delete(exchange);
      const method = exchange.req.method ?? 'GET';
      if (
        exchange.cacheOutcome === 'BYPASS' &&
        isUnsafeMethod(method) &&
        invalidatesOnStatus(exchange.res.statusCode) &&
        exchange.res.writableFinished
      ) {
        cache.invalidatePath(policy, exchange.path).catch(() => {}); // best effort; entries expire
        // The target URI's GET may be served by another route of the tenant (routes split by method).
        invalidateNamed(cache, exchange, { path: exchange.path, query: exchange.query });
        for (const target of named ?? []) invalidateNamed(cache, exchange, target);
      }
    },
  };
}

/**
 * The client's query carries a credential the origin gets while the key leaves the query out (a public
 * route keyed on its path alone): the origin may answer that caller, and the answer is stored only with
 * its consent. With the query keyed, only a request with the same credential reaches such an entry.
 */
function credentialQueryUnkeyed(policy: CompiledCachePolicy, exchange: GatewayExchange): boolean {
  if (policy.keyPattern !== 'path' || !policy.credentialsNeedOriginConsent) return false;
  const url = exchange.req.url ?? '';
  const queryAt = url.indexOf('?');
  return queryAt >= 0 && carriesCredentialQuery(url.slice(queryAt + 1), exchange.route?.config.query);
}

/**
 * A URI the response named (Location, Content-Location): its stored GET responses are dropped on every
 * replica like the target URI's. It may belong to another route of the same tenant: the tenant's own
 * router finds it (every route a differently spelled reading could reach, when the path is ambiguous).
 */
function invalidateNamed(cache: ResponseCache, exchange: GatewayExchange, target: InvalidationTarget): void {
  const facts = {
    req: exchange.req,
    query: target.query,
    peerTrusted: exchange.peerTrusted,
    scheme: exchange.scheme,
  };
  const found = exchange.tenant?.router.resolve('GET', target.path, { facts, preflight: false });
  const routes = found instanceof AmbiguousPath ? found.routes : found === undefined ? [] : [found];
  for (const route of routes) {
    const stage = route.stages.all.find((candidate) => policyOfStage.has(candidate));
    const policy = stage === undefined ? undefined : policyOfStage.get(stage);
    if (policy === undefined || policy.tenantId !== exchange.tenant?.id) continue;
    if (route === exchange.route && target.path === exchange.path) continue; // invalidated already
    cache.invalidatePath(policy, target.path).catch(() => {}); // best effort; entries expire
  }
}

/** Acts on the lookup: answers HIT/STALE here, prepares the proxy for MISS/BYPASS. */
function respond(cache: ResponseCache, exchange: GatewayExchange, lookup: CacheLookup): StageResult {
  const { res } = exchange;
  const method = exchange.req.method ?? 'GET';
  exchange.cacheOutcome = lookup.outcome;
  switch (lookup.outcome) {
    case 'HIT':
      cache.writeEntry(res, lookup.entry, 'HIT', method, exchange.req.headers, perRequestHeaders(exchange));
      return 'handled';
    case 'STALE':
      cache.writeEntry(res, lookup.entry, 'STALE', method, exchange.req.headers, perRequestHeaders(exchange));
      if (lookup.revalidation) refreshInBackground(cache, exchange, lookup.revalidation);
      return 'handled';
    case 'BYPASS':
      if (lookup.reason === 'only_if_cached') {
        failExchange(exchange, 504, 'not_cached', 'only-if-cached: no stored response satisfies the request');
        return 'handled';
      }
      res.setHeader('X-Cache', 'BYPASS');
      return 'continue';
    case 'MISS':
      res.setHeader('X-Cache', 'MISS');
      exchange.cacheFill = lookup.fill ?? undefined;
      exchange.cacheStaleIfError = lookup.staleIfError ?? undefined;
      if (lookup.fill === null) return 'continue';
      removeClientFields(exchange.req.headers, ORIGIN_ONLY_REQUEST_FIELDS);
      if (lookup.fill.revalidating) askConditionally(exchange, lookup.fill.revalidating);
      // The leader's response fills the entry every client gets: the origin is asked for all of it
      // (a 304 to the client's own validators could not be stored), the client's condition is then
      // answered from it.
      else if (method === 'GET' && isConditional(exchange.req.headers)) setClientConditionalAside(exchange);
      // Spelled otherwise (If_None_Match), a condition is none to the cache, and none for the origin.
      else removeClientFields(exchange.req.headers, CLIENT_CONDITIONAL_FIELDS);
      return 'continue';
  }
}

/**
 * The route's response headers with this request's values (its client address, id, consumer): a stored
 * entry never holds them (another client's would be replayed), so each answer from the cache gets its own.
 */
function perRequestHeaders(exchange: GatewayExchange): ((res: ServerResponse) => void) | undefined {
  const transform = exchange.perRequestResponseHeaders;
  if (transform === undefined) return undefined;
  return (res) => applyHeaderTransformToResponse(transform, res, exchange);
}

/** Statuses that count as an origin error for stale-if-error (RFC 5861 §4). */
const ORIGIN_ERRORS = new Set([500, 502, 503, 504]);

function serveStaleIfError(cache: ResponseCache, exchange: GatewayExchange): void {
  const stale = exchange.cacheStaleIfError!;
  exchange.cacheStaleIfError = undefined;
  if (exchange.cacheFill !== undefined) {
    cache.abandon(exchange.cacheFill);
    exchange.cacheFill = undefined;
  }
  exchange.cacheOutcome = 'STALE';
  exchange.res.removeHeader('X-Cache');
  cache.writeEntry(
    exchange.res,
    stale,
    'STALE',
    exchange.req.method ?? 'GET',
    exchange.cacheClientConditional ?? exchange.req.headers,
    perRequestHeaders(exchange),
  );
}

/**
 * The stale entry is revalidated with its own validators (RFC 9111 §4.3.1): the client's conditional
 * headers are set aside (the origin's 304 is answered against them) and the entry's sent instead.
 */
function askConditionally(exchange: GatewayExchange, stale: CacheEntry): void {
  setClientConditionalAside(exchange);
  Object.assign(exchange.req.headers, revalidationHeaders(stale));
}

/** The client's conditional headers are kept for its answer and not sent to the origin. */
function setClientConditionalAside(exchange: GatewayExchange): void {
  const headers = exchange.req.headers;
  exchange.cacheClientConditional = clientConditional(headers);
  removeClientFields(headers, CLIENT_CONDITIONAL_FIELDS);
}

/**
 * The client's own condition (set aside) holds for the origin's 200: it already has this response. Never
 * for an event stream: its 304 would wait for the end of a stream that does not end, the events dropped.
 */
function clientHasOriginResponse(exchange: GatewayExchange, head: ResponseHead): boolean {
  const conditional = exchange.cacheClientConditional;
  if (conditional === undefined || head.statusCode !== 200) return false;
  if (isEventStream(head.headers['content-type'])) return false;
  return clientHasCurrentCopy((name) => {
    const value = head.headers[name];
    return Array.isArray(value) ? value[0] : value === undefined ? undefined : String(value);
  }, conditional);
}

/**
 * A 304 for the client's conditional request, from the origin's 200 (RFC 9110 §15.4.5): its validators
 * and caching fields, and this request's own per-request headers; no content.
 */
function answerNotModified(exchange: GatewayExchange, head: ResponseHead): void {
  const { res } = exchange;
  for (const [name, value] of Object.entries(head.headers))
    if (value !== undefined && NOT_MODIFIED_HEADERS.has(name)) res.setHeader(name, value);
  perRequestHeaders(exchange)?.(res);
  res.writeHead(304);
  res.end();
}

/**
 * How long a fill's client may hold its body back before the requests waiting for the fill stop waiting
 * for it: well past a slow client's pauses between drains, far below the coalescing wait (10 s).
 */
const HANDOVER_AFTER_MS = 1_000;

/**
 * The MISS leader's origin response: collected for the cache while it streams (or not, when the rules
 * refuse it or the replica's fill budget is used up), stored when the body is complete.
 */
function fillingTap(
  cache: ResponseCache,
  exchange: GatewayExchange,
  fill: CacheFill,
  head: ResponseHead,
): BodyTap | undefined {
  const method = exchange.req.method ?? 'GET';
  if (head.statusCode === 304 && fill.revalidating !== null) {
    // The stored entry is still good: answer it (with updated headers) instead of the 304.
    exchange.cacheFill = undefined;
    const entry = cache.revalidated(fill, incomingHeaders(head.headers));
    exchange.cacheOutcome = 'REVALIDATED';
    exchange.res.removeHeader('X-Cache');
    cache.writeEntry(
      exchange.res,
      entry,
      'REVALIDATED',
      method,
      exchange.cacheClientConditional,
      perRequestHeaders(exchange),
    );
    return undefined;
  }
  const started = cache.beginFill(fill, method, head.statusCode, incomingHeaders(head.headers));
  // From here beginFill owns the fill: it released it already, or the body below carries it.
  exchange.cacheFill = undefined;
  // The client's own validators match: it gets a 304 once the body is read (and stored).
  const notModified = clientHasOriginResponse(exchange, head);
  if (started.outcome !== 'collect') {
    if (started.outcome === 'over_budget') {
      // Streamed through uncached: the replica's fill budget is used up.
      exchange.res.setHeader('X-Cache', 'BYPASS');
      exchange.cacheOutcome = 'BYPASS';
    }
    if (!notModified) return undefined;
    return { answersClient: true, chunk() {}, end: () => answerNotModified(exchange, head) };
  }
  const body = started.body;
  exchange.cacheFillBody = body;
  // While its client holds the body back, the fill is handed to the requests waiting for it, or gives
  // its bytes back when the tenant's share of the fill budget runs short (checked each HANDOVER_AFTER_MS
  // of holding, for requests that came and fills that began meanwhile).
  let holding: NodeJS.Timeout | undefined;
  const handOverWhileHeld = () => {
    holding = undefined;
    if (!body.handOver() && body.collecting)
      holding = setTimeout(handOverWhileHeld, HANDOVER_AFTER_MS).unref();
  };
  return {
    answersClient: notModified,
    chunk(data) {
      body.push(data);
    },
    held() {
      if (holding === undefined && body.collecting)
        holding = setTimeout(handOverWhileHeld, HANDOVER_AFTER_MS).unref();
    },
    resumed() {
      clearTimeout(holding);
      holding = undefined;
    },
    end() {
      clearTimeout(holding);
      exchange.cacheFillBody = undefined;
      // Runs as the client gets its response: a failure here must not reject into nothing.
      body.end().catch(() => {});
      if (notModified) answerNotModified(exchange, head);
    },
  };
}
