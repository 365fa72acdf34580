import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  keptOnlyFromTrustedProxy,
  splitOverrideLeftOut,
  type TrafficSplit,
} from '@vantageedge/shared/domain/route-policies';
import {
  type WeightedSplitOrigin,
  weightedSplitOrigins,
} from '@vantageedge/shared/gateway-policies/split-origins';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { CookieNames, cookieHeader, sentHeader } from '@vantageedge/shared/http/header-values';
import type { CompiledOrigin } from '../config/compiled-tenant.js';
import { requestAuthority } from '../http/request-authority.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage } from '../pipeline/stage.js';
import { originGetsTrustedProxyHeader } from '../proxy/forwarded-headers.js';
import { fnv1aPrefix, hash32WithText } from '../upstream/hash.js';

/**
 * A route's traffic split (canary 95/5, blue/green): each request goes to one of several origins, each
 * with its own targets, balancer, health and circuit breakers.
 * - Overrides first: a request whose header / cookie has the given value goes to that origin (no
 *   fallback: it asked for that one).
 * - Sticky (header or cookie): the value picks the origin by weight, the same on every replica
 *   (weighted rendezvous hashing: an edit of the split moves only the clients it must).
 * - Otherwise smooth weighted round robin per route and replica (nginx's): exactly the weights' shares.
 * When the chosen origin has no available target, the others are tried in order of weight.
 */
export function createTrafficSplitPolicy(): RoutePolicy {
  return {
    name: 'traffic_split',
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route, origins, warn }) {
      const entries = splitEntries(route, origins, warn);
      return entries === null ? null : splitStage(route.traffic_split!, entries, origins, warn);
    },
  };
}

/**
 * The ids of the origins the route's split sends requests to (its weighted origins and its overrides'),
 * among `origins`; null when the route has no split in effect (it sends to its own origin).
 */
export function splitOriginIds(
  route: RouteConfig,
  origins: ReadonlyMap<string, CompiledOrigin>,
): ReadonlySet<string> | null {
  const entries = splitEntries(route, origins);
  if (entries === null) return null;
  const ids = new Set(entries.map((entry) => entry.origin.config.id));
  for (const override of route.traffic_split!.overrides) {
    if (origins.has(override.origin_id)) ids.add(override.origin_id);
  }
  return ids;
}

/** The split's weighted origins the snapshot has; null when the route has no split in effect. */
function splitEntries(
  route: RouteConfig,
  origins: ReadonlyMap<string, CompiledOrigin>,
  warn?: (message: string) => void,
): SplitEntry[] | null {
  return weightedSplitOrigins(route, (id) => origins.get(id), warn);
}

type SplitEntry = WeightedSplitOrigin<CompiledOrigin>;

interface Override {
  readonly key: SplitKey;
  readonly value: string;
  readonly origin: CompiledOrigin;
}

/** A sticky or override key: a header read by `read`, or a cookie read with the split's others. */
type SplitKey = { readonly read: KeyOf; readonly cookie?: undefined } | { readonly cookie: string };

/** A header key's value in a request; undefined when the request has none. */
type KeyOf = (exchange: GatewayExchange) => string | undefined;

/**
 * Reads a sticky or override key. Host is the host the request is for (HTTP/2's :authority: HTTP/2
 * clients send no Host line). A header the gateway passes on only from a trusted proxy (True-Client-IP,
 * X-Forwarded-Ssl, …) is read as the origin gets it: the trusted proxy's line of that name or the one
 * the route's request transform wrote, and from any other client none, whatever it wrote.
 */
function compileKey(header: string | undefined, cookie: string | undefined): SplitKey {
  if (header === undefined) return { cookie: cookie ?? '' };
  const lower = header.toLowerCase();
  if (lower === 'host') return { read: (exchange) => requestAuthority(exchange.req.headers) };
  if (keptOnlyFromTrustedProxy(lower)) {
    const name = asOriginsReadIt(lower);
    return {
      read: (exchange) =>
        originGetsTrustedProxyHeader(name, exchange.peerTrusted, exchange.routeRequestHeaders)
          ? headerKey(exchange.req.headers, name)
          : undefined,
    };
  }
  return { read: (exchange) => headerKey(exchange.req.headers, lower) };
}

const NO_COOKIES: ReadonlyMap<string, string | undefined> = new Map();

/**
 * The values of the split's cookies in the request, from one pass over its Cookie header (an array
 * when the route's transform added a Cookie line to the client's: request_headers.add).
 */
function cookiesOf(names: CookieNames, exchange: GatewayExchange): ReadonlyMap<string, string | undefined> {
  const cookies = cookieHeader(exchange.req.headers.cookie);
  return cookies === undefined ? NO_COOKIES : names.valuesIn(cookies);
}

/**
 * The longest sticky value each origin's draw reads as it is (session and user ids are far shorter).
 * A longer one is drawn by its SHA-256 digest, read once: a client's 16 KB header against a split of
 * 10 origins was 10 passes over it, ≈1 ms of a replica's event loop per request.
 */
const MAX_STICKY_TEXT = 256;

function stickyText(value: string): string {
  return value.length <= MAX_STICKY_TEXT ? value : hash('sha256', value, 'base64url');
}

function headerKey(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = sentHeader(headers, name);
  return Array.isArray(value) ? value[0] : value;
}

function splitStage(
  split: TrafficSplit,
  entries: readonly SplitEntry[],
  origins: ReadonlyMap<string, CompiledOrigin>,
  warn: (message: string) => void,
): RouteStage {
  const total = entries.reduce((sum, entry) => sum + entry.weight, 0);
  const scores = new Float64Array(entries.length);
  // For each chosen entry, the others by weight (heaviest first): where to go when it has no target.
  const fallbacks = entries.map((chosen) =>
    entries
      .filter((entry) => entry !== chosen)
      .sort((a, b) => b.weight - a.weight)
      .map((entry) => entry.origin),
  );
  const overrides: Override[] = [];
  for (const override of split.overrides) {
    const origin = origins.get(override.origin_id);
    if (origin === undefined) continue;
    // The override would read the client's copy, any value it wrote, and send it to an origin only the
    // override reaches. Commands refuse such overrides; one stored before that is left out.
    if (splitOverrideLeftOut(override)) {
      warn(
        `traffic_split override on ${override.header}, a header the gateway writes for the origin: left out`,
      );
      continue;
    }
    overrides.push({ key: compileKey(override.header, override.cookie), value: override.value, origin });
  }
  const stickyKey = split.sticky === null ? undefined : compileKey(split.sticky.header, split.sticky.cookie);
  const cookieNames = new CookieNames(
    [...overrides.map((override) => override.key), ...(stickyKey === undefined ? [] : [stickyKey])].flatMap(
      (key) => (key.cookie === undefined ? [] : [key.cookie]),
    ),
  );

  // Weighted rendezvous hashing (highest random weight): each origin draws a number in (0, 1) from the
  // value and its own id, and the highest weight / -ln(draw) wins, which picks an origin with its
  // weight's share. The choice ignores the list's order, and an edit moves only the clients it must:
  // onto an origin added or weighted up, off one removed or weighted down (a hash modulo the weights'
  // total moved clients between origins the edit never touched whenever the total changed).
  const idStates = entries.map((entry) => fnv1aPrefix(`${entry.origin.config.id}\n`));
  const byValue = (sent: string): number => {
    const value = stickyText(sent);
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < entries.length; i++) {
      const draw = (hash32WithText(idStates[i]!, value) + 0.5) / 2 ** 32;
      const score = entries[i]!.weight / -Math.log(draw);
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return best;
  };
  const roundRobin = (): number => {
    let best = 0;
    for (let i = 0; i < entries.length; i++) {
      scores[i]! += entries[i]!.weight;
      if (scores[i]! > scores[best]!) best = i;
    }
    scores[best]! -= total;
    return best;
  };

  return {
    name: 'traffic_split',
    onRequest(exchange: GatewayExchange) {
      // The Cookie header is read once, at the first cookie key the request is asked for.
      let cookies: ReadonlyMap<string, string | undefined> | undefined;
      for (const { key, value, origin } of overrides) {
        let sent: string | undefined;
        if (key.cookie === undefined) sent = key.read(exchange);
        else {
          cookies ??= cookiesOf(cookieNames, exchange);
          sent = cookies.get(key.cookie);
        }
        if (sent !== value) continue;
        exchange.origin = origin;
        return 'continue';
      }
      let index: number;
      let key: string | undefined;
      if (stickyKey === undefined) key = undefined;
      else if (stickyKey.cookie === undefined) key = stickyKey.read(exchange);
      else key = (cookies ?? cookiesOf(cookieNames, exchange)).get(stickyKey.cookie);
      if (key !== undefined && key !== '') index = byValue(key);
      else index = roundRobin();
      exchange.origin = entries[index]!.origin;
      exchange.fallbackOrigins = fallbacks[index];
      return 'continue';
    },
  };
}
