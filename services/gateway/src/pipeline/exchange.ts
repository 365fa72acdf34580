import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Span } from '@opentelemetry/api';
import { ANONYMOUS, type Identity } from '../auth/identity.js';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';

/**
 * The typed per-request context every stage reads and adds to, in order:
 * tenant → route → auth → rate limit → cache → balance → proxy. One object per request with a fixed
 * shape (all fields set in the constructor).
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
  /**
   * A stage (the cache) may take the origin's response: given status and headers it returns where the
   * body goes (e.g. a tee that stores it and writes to `res`), or undefined to leave it alone.
   */
  interceptResponse:
    | ((statusCode: number, headers: OutgoingHttpHeaders, res: ServerResponse) => Writable | undefined)
    | undefined = undefined;
  span: Span | undefined = undefined;
  traceId: string | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly clientIp: string,
  ) {}
}

/**
 * A pipeline stage slotted between auth and the proxy (rate limit, cache). Returns
 * 'handled' when it has written the response itself (429, cache hit), 'continue' otherwise.
 * Stages should return synchronously when they can.
 */
export interface RequestStage {
  readonly name: string;
  run(exchange: GatewayExchange): StageResult | Promise<StageResult>;
}

export type StageResult = 'continue' | 'handled';
