import type { ClientRequest, IncomingMessage } from 'node:http';
import { type Duplex, pipeline } from 'node:stream';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { writeLowerCaseHead } from '../http/gateway-server-response.js';
import { frameNoContent, hasNoContent } from '../http/no-content.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ResponseHead } from '../pipeline/stage.js';
import type { CookieDomainGuard } from '../proxy/cookie-domains.js';
import { downstreamResponseHeaders } from '../proxy/forwarded-headers.js';
import type { ResponseScoping } from './switching-protocols.js';

/** The route's response hooks a refused upgrade's answer passes, as any origin answer of the route. */
const REFUSAL_RESPONSE_STAGES = new Set(['response_headers', 'response_headers_per_request']);
/** Those the switch passes: a CORS route's answers carry none of the origin's CORS fields either. */
const SWITCH_RESPONSE_STAGES = new Set(['cors_origin_headers', ...REFUSAL_RESPONSE_STAGES]);

/** The route's response hooks named in `names` on `head`, in the route's order. */
function runRouteHooks(exchange: GatewayExchange, head: ResponseHead, names: ReadonlySet<string>): void {
  for (const stage of exchange.route?.stages.response ?? []) {
    if (names.has(stage.name)) stage.onResponse!(exchange, head);
  }
}

/** The route's header hooks on the origin's switch (switchedFields). */
export function runSwitchHooks(exchange: GatewayExchange, head: ResponseHead): void {
  runRouteHooks(exchange, head, SWITCH_RESPONSE_STAGES);
}

/**
 * The origin answered the upgrade without switching protocols (e.g. 403): its answer goes to the client
 * as any origin answer of the route would — its cookies and Clear-Site-Data scoped to the tenant's host,
 * the route's response header hooks applied — and the client's connection ends with it.
 */
export function relayOriginAnswer(
  exchange: GatewayExchange,
  response: IncomingMessage,
  upstreamRequest: ClientRequest,
  client: Duplex,
  cookieDomains: CookieDomainGuard,
  hostHeader: string | undefined,
  tenant: CompiledTenant,
  scoping: ResponseScoping,
): void {
  const res = exchange.res;
  const outHeaders = downstreamResponseHeaders(
    response.headers as Record<string, string | string[] | undefined>,
  );
  const setCookie = outHeaders['set-cookie'];
  if (setCookie !== undefined) outHeaders['set-cookie'] = cookieDomains.scope(setCookie, hostHeader, tenant);
  const clearSiteData = outHeaders['clear-site-data'];
  if (clearSiteData !== undefined) {
    const scoped = scoping.clearSiteData(String(clearSiteData));
    if (scoped === undefined) delete outHeaders['clear-site-data'];
    else outHeaders['clear-site-data'] = scoped;
  }
  const status = response.statusCode ?? 502;
  const head: ResponseHead = { statusCode: status, headers: outHeaders, checkedHeaders: undefined };
  runRouteHooks(exchange, head, REFUSAL_RESPONSE_STAGES);
  res.once('finish', () => client.destroy());
  if (hasNoContent(status)) {
    // A 204, 205 or 304 goes out without content, whatever the origin sent with it (an HTTP/2
    // client resets a 204 stream that announces some).
    frameNoContent(status, outHeaders);
    writeLowerCaseHead(res, status, outHeaders, head.checkedHeaders);
    response.on('error', () => {});
    response.resume();
    upstreamRequest.destroy();
    res.end();
    return;
  }
  writeLowerCaseHead(res, status, outHeaders, head.checkedHeaders);
  // Taken now: once the answer is read whole, node frees a kept-alive connection to an agent there is
  // none of, and detaches it from both the request and the answer, its timeout cleared.
  const upstream = response.socket;
  // An answer the origin cuts short ends the client's connection too (pipeline destroys `res`); one
  // relayed whole ends the origin connection, which nothing would use or close again.
  pipeline(response, res, () => upstream?.destroy());
}
