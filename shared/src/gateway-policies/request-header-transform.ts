import { droppedFromClients } from '../domain/dropped-request-headers.js';
import {
  type HeaderTransform,
  requestHeaderNeverWritten,
  requestHeaderWrittenByGateway,
} from '../domain/route-policies.js';
import { asOriginsReadIt, otherSpellingsSent, spellingsReadAs } from '../http/cgi-spellings.js';
import {
  applyHeaderTransform,
  type CompiledHeaderTransform,
  compileHeaderTransform,
  type HeaderValue,
  withoutWrites,
} from './header-transform.js';

/**
 * A route's `request_headers` as the gateways apply it to a request, before its traffic split and its
 * cache read it (and what explain tells of them). Compiled once per route.
 */
export interface CompiledRequestHeaderTransform<Context> extends CompiledHeaderTransform<Context> {
  /** The other spellings of the names the route removes or sets, which go too. */
  readonly replaced: OtherSpellings;
}

/**
 * `add` on a header the gateway drops when a client sends it (in any spelling CGI-style origins read as
 * it: `X_Client_IP`) adds to nothing: the client's lines are removed first, so that a spoofed X-Client-IP
 * never rides along with the route's. Writes of names routes never write (commands refuse them; a route
 * stored before the rule keeps its other writes) are left out.
 */
export function compileRequestHeaderTransform<Context>(
  transform: HeaderTransform | null | undefined,
  compileValue: (text: string) => HeaderValue<Context>,
): CompiledRequestHeaderTransform<Context> | null {
  const compiled = withoutGatewayHeaderRemovals(
    withoutWrites(compileHeaderTransform(transform, compileValue), requestNeverWrittenByRoutes),
  );
  if (compiled === null) return null;
  // A route's X_Client_IP is X-Client-IP to CGI-style origins: the client's lines of it go too.
  const clientLines = compiled.addNames.filter((name) => droppedFromClients(asOriginsReadIt(name)));
  const remove = clientLines.length === 0 ? compiled.remove : [...compiled.remove, ...clientLines];
  return { ...compiled, remove, replaced: otherSpellings([...remove, ...compiled.setNames]) };
}

type RequestHeaderLines = Record<string, string | string[] | undefined>;

/**
 * The transform on a request's headers (node's, lower-case names), in place: every spelling the client
 * sent of a name the route removes or sets goes, then remove, set and add (applyHeaderTransform).
 */
export function applyRequestHeaderTransform<Context>(
  transform: CompiledRequestHeaderTransform<Context>,
  headers: RequestHeaderLines,
  context: Context,
): void {
  withoutOtherSpellings(headers, transform.replaced);
  applyHeaderTransform(transform, headers, context);
}

/**
 * The headers the gateway writes on every origin request (X-Forwarded-*, Forwarded, X-Real-IP,
 * X-Request-Id, CDN-Loop, the x-vantageedge-* identity headers), as CGI-style origins read a name.
 * Commands refuse them in a transform; a route stored before the rule neither writes nor removes them,
 * in any spelling: removing `x.forwarded.for` would remove a trusted proxy's X-Forwarded-For as another
 * spelling of it before the gateway appends to it (and `cdn_loop` the entries the next gateway counts to
 * find a loop), and a written X-Forwarded-For would stand for the proxy's.
 */
const CDN_LOOP = 'cdn-loop';
const writtenByGateway = (name: string) => {
  const read = asOriginsReadIt(name.toLowerCase());
  return read === CDN_LOOP || requestHeaderWrittenByGateway(read);
};
const requestNeverWrittenByRoutes = (name: string) =>
  writtenByGateway(name) || requestHeaderNeverWritten(name);

function withoutGatewayHeaderRemovals<Context>(
  transform: CompiledHeaderTransform<Context> | null,
): CompiledHeaderTransform<Context> | null {
  if (transform === null || !transform.remove.some(writtenByGateway)) return transform;
  const remove = transform.remove.filter((name) => !writtenByGateway(name));
  if (remove.length + transform.written.length === 0) return null;
  return { ...transform, remove };
}

/**
 * A header the route removes or sets goes in every spelling the client sent of it: PHP, Rack and WSGI
 * servers read `X_User_Role` (PHP `X.User.Role` too: asOriginsReadIt) as X-User-Role, so a removed header
 * would reach such an origin, and a set one beside the client's value. (`add` keeps the client's line in
 * any spelling.)
 */
interface OtherSpellings {
  /** Every other spelling of the names with few separators. */
  readonly listed: ReadonlySet<string>;
  /**
   * 1 at each length a listed spelling has (a spelling is as long as its name): a request's names are
   * looked up in `listed` only at those lengths. One pass over the request's few names costs less than
   * a lookup of each of the 8 to 26 spellings per name, which a request nearly never sent.
   */
  readonly listedLengths: Uint8Array;
  /** Names with more (3^separators spellings), whose spellings are searched among the request's. */
  readonly searched: readonly string[];
}

/** Up to 26 other spellings of a name are listed when the route compiles (x-client-ip has 8). */
const MAX_LISTED_SEPARATORS = 3;

function otherSpellings(names: readonly string[]): OtherSpellings {
  const listed = new Set<string>();
  const searched: string[] = [];
  for (const name of new Set(names)) {
    const read = asOriginsReadIt(name);
    if (read.split('-').length - 1 > MAX_LISTED_SEPARATORS) {
      searched.push(name);
      continue;
    }
    for (const spelling of spellingsReadAs(read)) if (spelling !== name) listed.add(spelling);
  }
  const listedLengths = new Uint8Array(Math.max(0, ...[...listed].map((spelling) => spelling.length + 1)));
  for (const spelling of listed) listedLengths[spelling.length] = 1;
  return { listed, listedLengths, searched };
}

function withoutOtherSpellings(headers: RequestHeaderLines, spellings: OtherSpellings): void {
  const { listed, listedLengths } = spellings;
  if (listed.size > 0) {
    for (const sent in headers) {
      // for…in allows deleting the name it is visiting.
      if (listedLengths[sent.length] === 1 && listed.has(sent)) delete headers[sent];
    }
  }
  for (const name of spellings.searched)
    for (const spelling of otherSpellingsSent(headers, name)) delete headers[spelling];
}
