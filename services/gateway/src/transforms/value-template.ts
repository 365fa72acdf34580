import {
  parseTemplate,
  TEMPLATE_VARIABLES,
  type TemplateVariable,
} from '@vantageedge/shared/domain/route-policies';
import type { GatewayExchange } from '../pipeline/exchange.js';

/** A header or query value with `${…}` variables, compiled once: per request only concatenation. */
export type ValueTemplate = (exchange: GatewayExchange) => string;

/** Characters a header value may not carry (a caller-chosen token subject could bring them). */
const UNSAFE_IN_HEADER = /[^\t\x20-\x7e]/g;

function variable(name: TemplateVariable): ValueTemplate {
  switch (name) {
    case 'client_ip':
      return (exchange) => exchange.clientIp;
    case 'request_id':
      return (exchange) => exchange.requestId;
    case 'tenant_id':
      return (exchange) => exchange.tenant!.id;
    case 'route_id':
      return (exchange) => exchange.route!.config.id;
    case 'consumer_id':
      // The authenticated caller: user (JWT), service account or API key; empty when anonymous.
      return (exchange) => {
        const { identity } = exchange;
        const id = identity.userId ?? identity.serviceId ?? identity.apiKeyId ?? '';
        return id.replace(UNSAFE_IN_HEADER, '');
      };
  }
}

/** The variables whose values differ between two requests of one route. */
const PER_REQUEST_VARIABLES: ReadonlySet<TemplateVariable> = new Set([
  'client_ip',
  'request_id',
  'consumer_id',
]);

/** Whether the template names a value of the request itself (its client, its id, its caller). */
export function namesRequestValues(text: string): boolean {
  const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
  return (
    parsed.ok && parsed.parts.some((part) => 'variable' in part && PER_REQUEST_VARIABLES.has(part.variable))
  );
}

export function compileValueTemplate(text: string): ValueTemplate {
  const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
  if (!parsed.ok || parsed.parts.every((part) => 'literal' in part)) return () => text;
  const parts = parsed.parts.map((part) => ('literal' in part ? part.literal : variable(part.variable)));
  if (parts.length === 1 && typeof parts[0] === 'function') return parts[0];
  return (exchange) => {
    let value = '';
    for (const part of parts) value += typeof part === 'string' ? part : part(exchange);
    return value;
  };
}
