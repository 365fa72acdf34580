import type { IpRules } from '@vantageedge/shared/domain/route-policies';
import { AddressMatcher } from '@vantageedge/shared/gateway-policies/address-matcher';
import { failExchange } from '../pipeline/errors.js';
import { rememberVerdicts } from '../pipeline/remembered-verdicts.js';
import type { RoutePolicy, RouteStage } from '../pipeline/stage.js';

/**
 * IP allow / deny lists on the client address (as the gateway resolved it: the peer, or the address
 * trusted proxies forwarded). A route's `ip_rules` replace the tenant-wide `settings.ip_rules`. Deny
 * wins; a non-empty allow list admits only its ranges. Refused: 403 `ip_denied`, before CORS and
 * authentication (a refused address learns nothing about the route).
 */
export function createIpRulesPolicy(): RoutePolicy {
  return {
    name: 'ip_rules',
    compileRoute({ tenant, route }) {
      const rules = route.ip_rules ?? tenant.settings.ip_rules ?? null;
      return rules === null ? null : ipRulesStage(rules);
    },
  };
}

function ipRulesStage(rules: IpRules): RouteStage | null {
  const deny = new AddressMatcher(rules.deny);
  const allow = new AddressMatcher(rules.allow);
  if (deny.size === 0 && allow.size === 0) return null;
  const refused = rememberVerdicts((address) => deny.has(address) || (allow.size > 0 && !allow.has(address)));
  return {
    name: 'ip_rules',
    onRequest(exchange) {
      if (refused(exchange.clientIp)) {
        failExchange(exchange, 403, 'ip_denied', 'requests from this address are not allowed on this route');
        return 'handled';
      }
      return 'continue';
    },
  };
}
