import { compilePathRewrite } from '@vantageedge/shared/gateway-policies/path-rewrite';
import type { RoutePolicy, RouteStage } from '../pipeline/stage.js';
import { applyHeaderTransform, compileHeaderTransform } from './header-transform.js';
import { compileQueryTransform } from './query-transform.js';

/**
 * What the origin receives: `request_headers` (set / add / remove on the headers forwarded),
 * `rewrite_path` and `query`. After authentication (values may name the consumer) and before the
 * response cache, which keys on what the origin receives. Identity and forwarding headers
 * (x-vantageedge-*, X-Forwarded-*) stay the gateway's: the control plane refuses transforms of them.
 */
export function createRequestTransformPolicy(): RoutePolicy {
  return {
    name: 'request_transform',
    compileRoute({ route }) {
      const headers = compileHeaderTransform(route.request_headers);
      const rewrite = route.rewrite_path ? compilePathRewrite(route.rewrite_path, route.path_pattern) : null;
      const query = compileQueryTransform(route.query);
      if (headers === null && rewrite === null && query === null) return null;
      const stage: RouteStage = {
        name: 'request_transform',
        onRequest(exchange) {
          if (headers !== null) applyHeaderTransform(headers, exchange.req.headers, exchange);
          if (rewrite !== null) exchange.forwardPath = rewrite(exchange.path);
          if (query !== null) exchange.query = query(exchange);
          return 'continue';
        },
      };
      return stage;
    },
  };
}

/**
 * `response_headers` on the origin's response. Placed after the response cache in the pipeline, so its
 * response hook runs first (hooks run in reverse) and the cache stores the transformed headers: a HIT
 * answers with them too. Answers the gateway makes itself (errors, fixed responses) are not changed.
 */
export function createResponseHeadersPolicy(): RoutePolicy {
  return {
    name: 'response_headers',
    compileRoute({ route }) {
      const headers = compileHeaderTransform(route.response_headers);
      if (headers === null) return null;
      return {
        name: 'response_headers',
        onResponse(exchange, head) {
          applyHeaderTransform(headers, head.headers, exchange);
          return undefined;
        },
      };
    },
  };
}
