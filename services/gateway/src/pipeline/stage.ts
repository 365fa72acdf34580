import type { OutgoingHttpHeaders } from 'node:http';
import type { QuotaPolicy, RouteConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { CompiledOrigin, CompiledTenant } from '../config/compiled-tenant.js';
import type { CheckedHeader } from '../http/gateway-server-response.js';
import type { RouteMetrics } from '../observability/gateway-metrics.js';
import type { GatewayExchange } from './exchange.js';

/**
 * The stage model of the request pipeline (the shape of Fastify's route-level hooks and Envoy's
 * per-route filter chain). A RoutePolicy is one feature of the gateway (authentication, rate limiting,
 * response cache, a future route policy); when a snapshot is applied it is compiled onto every route
 * that uses it, giving that route a RouteStage. A route's stages run in the policies' order; a route
 * that uses no feature has no stages and runs no stage code.
 */

/** 'handled': the stage answered the request itself (401, 429, a cache HIT); nothing after it runs. */
export type StageResult = 'continue' | 'handled';

/** The origin's response head as it will be sent to the client (hop-by-hop headers already removed). */
export interface ResponseHead {
  readonly statusCode: number;
  /** May be changed by a response hook before it is written. */
  readonly headers: OutgoingHttpHeaders;
  /**
   * Headers a response hook adds checked in advance (a route's fixed response_headers), written with
   * `headers` as prepared lines (CheckedHeader); none of their names is in `headers`. Only on a route
   * with no hook that keeps a copy of the head (the response cache): such a copy has `headers` alone.
   */
  checkedHeaders?: readonly CheckedHeader[] | undefined;
}

/** Sees an origin response body as it streams to the client (the pipeline writes the response itself). */
export interface BodyTap {
  chunk(data: Buffer): void;
  /** The whole body was read from the origin and handed to the client. */
  end(): void;
  /**
   * The tap answers the client itself in end() (the cache answering a client's conditional request
   * with 304 while it stores the origin's 200): the origin's head and body are not written to it.
   */
  readonly answersClient?: boolean;
  /** The client stopped taking the body: the origin is held back until it does (`resumed`). */
  held?(): void;
  resumed?(): void;
}

/** What an open connection showed at its upgrade that a route's stages judge it by. */
export interface OpenConnectionFacts {
  /** The client's address as the gateway resolved it (the peer, or what trusted proxies forwarded). */
  readonly clientIp: string;
  /** The upgrade's Origin header: the page that opened the connection (none from a non-browser client). */
  readonly page: string | undefined;
}

/** Why a stage would refuse an open connection's upgrade now (the error code it would answer). */
export type OpenConnectionRefusal = 'ip_denied' | 'cors_not_allowed';

export interface RouteStage {
  /** Span name and label: "auth", "rate_limit", "cache", … */
  readonly name: string;
  /**
   * Before the request goes to the origin. Returns synchronously whenever it can: a Promise only when
   * the stage really waits (a token not verified yet, a Redis call), so a request whose stages all
   * answer synchronously allocates no promise for them.
   */
  onRequest?(exchange: GatewayExchange): StageResult | Promise<StageResult>;
  /**
   * A WebSocket upgrade (HTTP/1.1 or an HTTP/2 extended CONNECT), before it is authenticated: what the
   * stage decides of an upgrade that its onRequest does not (the WebSocket proxy runs onRequest only
   * for the stages it names). 'handled': the stage refused the upgrade.
   */
  onUpgrade?(exchange: GatewayExchange): StageResult;
  /**
   * Whether this stage would now refuse a connection the route admitted earlier (an open WebSocket),
   * judged by what the connection showed at its upgrade and cannot change while open: the code its
   * upgrade would be refused with now, else undefined. Asked when a later version of the tenant is
   * applied, so that a tightened rule ends what it no longer admits.
   */
  refusesOpenConnection?(connection: OpenConnectionFacts): OpenConnectionRefusal | undefined;
  /**
   * When the origin's response headers arrive, in reverse stage order (the Envoy encoder order). May
   * change the headers and may return a tap to see the body (the cache storing a MISS).
   */
  onResponse?(exchange: GatewayExchange, head: ResponseHead): BodyTap | undefined;
  /**
   * The origin gave no response (unreachable, timeout, no healthy target: `status` is the error the
   * gateway would answer). Returns true when the stage answered the request itself (stale-if-error).
   */
  onOriginFailure?(exchange: GatewayExchange, status: number): boolean;
  /**
   * Once the exchange is over (response finished or connection gone): release per-request state. Runs
   * again if a stage that was waiting when the client left resumes after it (what it took is released).
   */
  onEnd?(exchange: GatewayExchange): void;
}

export interface RouteCompileContext {
  /** The tenant's part of the snapshot (settings such as the tenant-wide rate limit). */
  readonly tenant: TenantSnapshot['tenant'];
  readonly route: RouteConfig;
  /**
   * The tenant's compiled origins by id (a traffic split names several). Read only those the route
   * names (origin_id, traffic_split): a route is kept compiled across versions while they are unchanged.
   */
  readonly origins: ReadonlyMap<string, CompiledOrigin>;
  /** A problem with the route's configuration that does not stop it from serving (logged). */
  readonly warn: (message: string) => void;
  /** The quotas of the tenant's API keys that have one, by key id. */
  readonly apiKeyQuotas: ReadonlyMap<string, QuotaPolicy>;
  /** The route's metrics (none without a registry): they stop counting once the route retires. */
  readonly routeMetrics?: RouteMetrics | undefined;
}

export interface RoutePolicy {
  readonly name: string;
  /** This feature for one route, or null when the route does not use it (no stage, no cost). */
  compileRoute(context: RouteCompileContext): RouteStage | null;
  /**
   * What compileRoute reads besides the route, the origins the route names and its metrics, as a
   * string: a route unchanged in the tenant's next version keeps this policy's stage while the string
   * is the same, whatever else of the tenant changed. Absent: the tenant's whole part of the snapshot
   * and the API key quotas (any change there compiles the stage again).
   */
  compiledFrom?(tenant: TenantSnapshot['tenant'], apiKeyQuotas: ReadonlyMap<string, QuotaPolicy>): string;
  /**
   * Whether compileRoute reads the origins the route names (`context.origins`). Absent: it does, and a
   * route whose origin changed compiles this policy's stage again. False: the route keeps the stage
   * (one command changing an origin's timeout or targets must not compile every stage of every route
   * on it again, on every replica).
   */
  readonly readsOrigins?: boolean;
  /** After a tenant's snapshot was compiled and swapped in (e.g. warm per-tenant state). */
  tenantApplied?(tenant: CompiledTenant): void;
  /**
   * A tenant version was replaced (`replacement`: the version now in the config) or removed (none):
   * drop anything held for it, and for its routes the replacement no longer has.
   */
  tenantRetired?(tenant: CompiledTenant, replacement: CompiledTenant | undefined): void;
}

/** A route's stages, split once per hook so the request path loops over exactly what runs. */
export interface RouteStages {
  readonly all: readonly RouteStage[];
  readonly request: readonly RouteStage[];
  /**
   * The route's IP rules (request[0] when it has them), judged before anything that depends on the
   * route (the gateway's checkClientAddress); undefined without.
   */
  readonly clientAddress: RouteStage | undefined;
  /** `request` without clientAddress: the walk of the request's stages after it. */
  readonly afterClientAddress: readonly RouteStage[];
  readonly upgrade: readonly RouteStage[];
  /** Reverse order. */
  readonly response: readonly RouteStage[];
  readonly end: readonly RouteStage[];
}

export const NO_STAGES: RouteStages = Object.freeze({
  all: [],
  request: [],
  clientAddress: undefined,
  afterClientAddress: [],
  upgrade: [],
  response: [],
  end: [],
});

/** compiledFrom of a policy whose compileRoute reads nothing but the route, its origins and its metrics. */
export const ROUTE_ONLY = (): string => '';

/**
 * Each policy's stage for one route (null: the route does not use it), in the policies' order.
 * `kept(index)`: the stage an earlier compilation of the route made for that policy, when it still
 * holds (undefined: compile it).
 */
export function compilePolicyStages(
  policies: readonly RoutePolicy[],
  context: RouteCompileContext,
  kept?: (index: number) => RouteStage | null | undefined,
): (RouteStage | null)[] {
  return policies.map((policy, index) => {
    const stage = kept?.(index);
    return stage !== undefined ? stage : policy.compileRoute(context);
  });
}

/** The name of the stage RouteStages.clientAddress holds (ip-rules-stage.ts). */
const CLIENT_ADDRESS_STAGE = 'ip_rules';

/** A route's stages from its policies' (compilePolicyStages), split per hook. */
export function routeStagesOf(byPolicy: readonly (RouteStage | null)[]): RouteStages {
  const all = byPolicy.filter((stage): stage is RouteStage => stage !== null);
  if (all.length === 0) return NO_STAGES;
  const request = all.filter((stage) => stage.onRequest !== undefined);
  // The IP rules' policy comes first in the pipeline's order: its stage, when there, is request[0].
  const clientAddress = request[0]?.name === CLIENT_ADDRESS_STAGE ? request[0] : undefined;
  return {
    all,
    request,
    clientAddress,
    afterClientAddress: clientAddress === undefined ? request : request.slice(1),
    upgrade: all.filter((stage) => stage.onUpgrade !== undefined),
    response: all.filter((stage) => stage.onResponse !== undefined).reverse(),
    end: all.filter((stage) => stage.onEnd !== undefined),
  };
}
