import {
  LOCATION_VARIABLES,
  type LocationVariable,
  parseTemplate,
  pathChoosesRedirectHost,
  type Redirect,
  type TemplatePart,
} from '../domain/route-policies.js';
import { percentEncodedBytes } from '../routing/percent-encoded-bytes.js';

/**
 * The longest Location a redirect sends: a template names the request's path, query and host up to
 * MAX_TEMPLATE_VARIABLES times (routes stored before the rule, as often as 2,000 characters allow:
 * 285 copies of a path the client chose), and the answer must not cost the replica (or the control
 * plane's explain) many times what the client sent. Longer is a 414 `uri_too_long`.
 */
export const MAX_REDIRECT_LOCATION_LENGTH = 32 * 1024;
/** The 414's message, from the gateways and in the control plane's explain. */
export const REDIRECT_LOCATION_TOO_LONG = `the redirect's location would be longer than ${MAX_REDIRECT_LOCATION_LENGTH} characters with this request's path and query`;

/**
 * The Location for one request, or undefined when it would be longer than MAX_REDIRECT_LOCATION_LENGTH
 * (nothing longer is built). `read` gives a variable's value for the request: the path, the query with
 * its `?` (or ''), the host.
 */
export type RedirectLocation<Request> = (request: Request) => string | undefined;

/** Request-derived text in a Location header: anything but visible ASCII percent-encoded. */
const NOT_VISIBLE_ASCII = /[^\x21-\x7e]/g;
const encoded = (text: string) => text.replace(NOT_VISIBLE_ASCII, percentEncodedBytes);

export function compileRedirectLocation<Request>(
  redirect: Redirect,
  read: (variable: LocationVariable, request: Request) => string,
): RedirectLocation<Request> {
  const parsed = parseTemplate(redirect.location, LOCATION_VARIABLES);
  const parts: TemplatePart<LocationVariable>[] = parsed.ok ? parsed.parts : [{ literal: redirect.location }];
  let literalLength = 0;
  const uses = new Map<LocationVariable, number>();
  for (const part of parts) {
    if ('literal' in part) literalLength += part.literal.length;
    else uses.set(part.variable, (uses.get(part.variable) ?? 0) + 1);
  }
  // A route stored before commands refused such a template (`/${path}`): the path's first slash is
  // sent encoded, so that the client's first segment stays a segment on the tenant's host and never
  // becomes the host browsers go to (`//evil.example`); so is every `@`, or `/@evil.example` would make
  // the encoded slash the user name before the host (`https:%2F@evil.example`). What browsers then read
  // as a host starts with `%2F`, which no host may hold: they go nowhere.
  const pathKeptOffHost = pathChoosesRedirectHost(redirect.location);
  return (request) => {
    // Each variable read and encoded once; its length counted before anything is built.
    const values = new Map<LocationVariable, string>();
    let length = literalLength;
    for (const [name, count] of uses) {
      let value = encoded(read(name, request));
      if (pathKeptOffHost && name === 'path') value = keptOffHost(value);
      values.set(name, value);
      length += count * value.length;
    }
    if (length > MAX_REDIRECT_LOCATION_LENGTH) return undefined;
    let location = '';
    for (const part of parts) location += 'literal' in part ? part.literal : values.get(part.variable)!;
    return location;
  };
}

/** A path for a template that would let it choose the host: its first slash and every `@` encoded. */
function keptOffHost(path: string): string {
  const encodedAt = path.replaceAll('@', '%40');
  return encodedAt.startsWith('/') ? `%2F${encodedAt.slice(1)}` : encodedAt;
}
