import type { OriginConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  keptOnlyFromTrustedProxy,
  readsClientCopyOfGatewayHeader,
} from '@vantageedge/shared/domain/route-policies';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { cookieHeader, cookieValue, sentHeader } from '@vantageedge/shared/http/header-values';
import { requestAuthority } from '../../http/request-authority.js';
import { originGetsTrustedProxyHeader } from '../../proxy/forwarded-headers.js';
import type { PickContext } from '../types.js';

export type HashKeyOf = (context: PickContext) => string;

const byClientIp: HashKeyOf = (context) => context.clientIp;
const byPath: HashKeyOf = (context) => context.path;

function byHeader(context: PickContext, name: string): string {
  const value = sentHeader(context.headers, name);
  if (typeof value === 'string') return value === '' ? context.clientIp : value;
  return value?.[0] ?? context.clientIp;
}

/**
 * Compiles origin.load_balancing.hash_on into a key extractor. A request without the header or
 * cookie falls back to its client IP (as Kong's hash_fallback and APISIX's chash do), so it is still
 * sticky rather than random; so does one from a client other than a trusted proxy for a header the
 * gateway passes on only from those (True-Client-IP, …: keptOnlyFromTrustedProxy), unless the route's
 * request transform wrote it. Undefined when
 * hash_on needs a hash_key and the origin has none, or has one naming a header the gateway writes for
 * the origin (stored before commands refused it): the client's copy, any value it wrote, would choose
 * the target.
 */
export function compileHashKey(loadBalancing: OriginConfig['load_balancing']): HashKeyOf | undefined {
  switch (loadBalancing.hash_on) {
    case 'client_ip':
      return byClientIp;
    case 'path':
      return byPath;
    case 'header': {
      if (loadBalancing.hash_key === undefined || readsClientCopyOfGatewayHeader(loadBalancing.hash_key))
        return undefined;
      const lower = loadBalancing.hash_key.toLowerCase();
      // HTTP/2 clients name the host in :authority and send no Host line.
      if (lower === 'host') return (context) => requestAuthority(context.headers) ?? context.clientIp;
      if (keptOnlyFromTrustedProxy(lower)) {
        // Read as the origin gets it: the trusted proxy's line of that name, or the route's; other
        // clients have none.
        const name = asOriginsReadIt(lower);
        return (context) =>
          originGetsTrustedProxyHeader(name, context.peerTrusted, context.routeHeaders)
            ? byHeader(context, name)
            : context.clientIp;
      }
      return (context) => byHeader(context, lower);
    }
    case 'cookie': {
      if (loadBalancing.hash_key === undefined) return undefined;
      const name = loadBalancing.hash_key;
      return (context) => {
        const cookies = cookieHeader(context.headers.cookie);
        return (cookies === undefined ? undefined : cookieValue(cookies, name)) ?? context.clientIp;
      };
    }
  }
}
