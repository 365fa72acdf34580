import type { OriginConfig } from '@vantageedge/shared/domain/gateway-config';
import { cookieHeader, cookieValue, sentHeader } from '@vantageedge/shared/http/header-values';
import type { PickContext } from '../types.js';

export type HashKeyOf = (context: PickContext) => string;

const byClientIp: HashKeyOf = (context) => context.clientIp;
const byPath: HashKeyOf = (context) => context.path;

/**
 * Compiles origin.load_balancing.hash_on into a key extractor. A request without the header or
 * cookie falls back to its client IP (as Kong's hash_fallback and APISIX's chash do), so it is still
 * sticky rather than random. Undefined when hash_on needs a hash_key and the origin has none.
 */
export function compileHashKey(loadBalancing: OriginConfig['load_balancing']): HashKeyOf | undefined {
  switch (loadBalancing.hash_on) {
    case 'client_ip':
      return byClientIp;
    case 'path':
      return byPath;
    case 'header': {
      if (loadBalancing.hash_key === undefined) return undefined;
      const name = loadBalancing.hash_key.toLowerCase();
      return (context) => {
        const value = sentHeader(context.headers, name);
        if (typeof value === 'string') return value === '' ? context.clientIp : value;
        return value?.[0] ?? context.clientIp;
      };
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
