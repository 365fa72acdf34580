import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import type { CacheEntry } from './cache-entry.js';
import type { Flight } from './fill-flights.js';

/** The right to fill one key: given to exactly one request (the leader) per key and replica at a time. */
export interface CacheFill {
  /** What concurrent lookups coalesce on: the URL key, or a variant key once the URL is known to vary. */
  readonly key: string;
  /** The URL's own key (path, query, configured headers, caller); variants hang below it. */
  readonly urlKey: string;
  readonly policy: CompiledCachePolicy;
  readonly pathIndexKey: string;
  /** The flight the requests coalesced behind this fill follow, ended with what it fills. */
  readonly flight: Flight;
  /**
   * Its flight replaced one under way when a purge heard since that one began made it unfit to follow:
   * this fill goes to the origin without waiting for that fill's lease across replicas (whose answer
   * could not be stored).
   */
  readonly replacesPurged: boolean;
  /**
   * When the lookup began the fill (the response cache's ordered clock), before its origin is asked: a
   * purge of the response's path or tags this replica heard since then keeps it from the L1.
   */
  readonly startedAt: number;
  /**
   * The same moment by the response cache's own clock (`now`): the store's fence, told how long ago the
   * origin was asked, refuses the fill after a purge of its path or tags since. The ordered clock may
   * run ahead of `now` for a while (once the clock was set back): measured from it, a purge that came
   * while the origin was asked would seem to come before.
   */
  readonly askedAt: number;
  /** The normalised request path: its ancestor segments tag the stored response (purge by prefix). */
  readonly path: string;
  /** The filling request's headers as the origin received them: a varying response is keyed on them. */
  readonly headers: IncomingHttpHeaders;
  /** The filling request carried Authorization (storage needs the origin's consent on public routes). */
  readonly authorized: boolean;
  /** The filling request carried a Cookie (storage needs the origin's consent on public routes). */
  readonly withCookie: boolean;
  /**
   * The client's credential headers the filling request carried (clientCredentialHeaders): storage
   * needs the origin's consent on public routes, or a key on them.
   */
  readonly credentialHeaders: readonly string[];
  /** The filling request carried a credential in a query the key leaves out (CacheRequest.credentialQuery). */
  readonly credentialQuery: boolean;
  /**
   * A stale stored entry with a validator: the origin is asked conditionally (revalidationHeaders) and a
   * 304 is answered from it (revalidated()).
   */
  revalidating: CacheEntry | null;
  /**
   * The stored response the request could have been answered with (stale, or not what the client asked
   * for): a HEAD whose 200 says the resource changed makes it stale (RFC 9111 §4.3.5).
   */
  found: CacheEntry | null;
  /**
   * The response's Vary names Origin only because the gateway merged its own in (GatewayExchange
   * .varyOriginByGateway): the URL's key holds Origin as the route's CORS policy reads it, and the
   * variant does not read it again. An origin that says `Vary: Origin` itself has its answers kept per
   * Origin as sent (varySelector).
   */
  varyOriginByGateway?: boolean;
  /** This fill's lease on the key across replicas (RedisCacheStore), given back once it is stored or dropped. */
  lease: { readonly key: string; readonly token: string } | null;
}

/**
 * How a leader's origin response is taken once its status and headers are known (beginFill):
 * - `collect`: stream the body to the client and push every chunk into `body`; end() stores it.
 * - `not_storable`: the rules refuse it (status, Cache-Control, Vary: *, …); stream it through, X-Cache
 *   stays MISS.
 * - `over_budget`: the tenant's share of the replica's fill budget (or the budget itself) is used up, or
 *   the origin's Content-Length does not fit what is free of it; stream it through with X-Cache: BYPASS.
 * Either way the coalesced followers are released (or, for `collect`, woken by end()/abort()).
 */
export type FillStart =
  | { readonly outcome: 'collect'; readonly body: FillBody }
  | { readonly outcome: 'not_storable'; readonly reason: string }
  | { readonly outcome: 'over_budget' };

/** The body of a response being collected for the cache, chunk by chunk as it streams to the client. */
export interface FillBody {
  /**
   * One chunk as it is written to the client. The fill reserves its bytes as they arrive. Collecting
   * stops for good (and what was buffered is released) past the policy's max_body_bytes, when the
   * tenant's share of the fill budget (or the budget) has no room for it, or once the fill ran past its
   * deadline (fill-budget.ts). The response itself goes on; it is just not stored.
   */
  push(chunk: Buffer): void;
  /** Still collecting: false once collecting stopped or the fill ended (a reader with no client may stop). */
  readonly collecting: boolean;
  /** The body is complete: stores the response if it was collected whole; wakes the followers. */
  end(): Promise<boolean>;
  /** The exchange failed before the body ended: releases the buffer and the followers. */
  abort(): void;
  /**
   * Its client stopped taking the body, and the proxy holds the origin back for it: requests waiting
   * for the fill would wait for that client, and the bytes collected hold the tenant's share of the fill
   * budget. When some requests have waited, or the tenant's fills hold half its share, collecting stops
   * (the response goes on to its client, not stored) and the waiting requests look again, one of them
   * filling the key. False: the fill goes on (none waited and the share has room, or it no longer collects).
   */
  handOver(): boolean;
}
