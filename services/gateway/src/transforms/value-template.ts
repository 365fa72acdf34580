import {
  parseTemplate,
  TEMPLATE_VARIABLES,
  type TemplateVariable,
} from '@vantageedge/shared/domain/route-policies';
import type { GatewayExchange } from '../pipeline/exchange.js';

/**
 * A header or query value compiled once: the text itself when it names no variable (most do not),
 * else a function of the request that only concatenates. A tenant at the snapshot bound may carry
 * 70,000 values, compiled on every replica: a plain string costs no closure, and a value that is one
 * variable is the variable's function, shared by every route.
 */
export type ValueTemplate = string | ((exchange: GatewayExchange) => string);

export function templateValue(template: ValueTemplate, exchange: GatewayExchange): string {
  return typeof template === 'string' ? template : template(exchange);
}

/** Characters a header value may not carry (a caller-chosen token subject could bring them). */
const UNSAFE_IN_HEADER = /[^\t\x20-\x7e]/g;

const VARIABLES: Readonly<Record<TemplateVariable, (exchange: GatewayExchange) => string>> = {
  client_ip: (exchange) => exchange.clientIp,
  request_id: (exchange) => exchange.requestId,
  tenant_id: (exchange) => exchange.tenant!.id,
  route_id: (exchange) => exchange.route!.config.id,
  // The authenticated caller: user (JWT), service account or API key; empty when anonymous.
  consumer_id: (exchange) => {
    const { identity } = exchange;
    const id = identity.userId ?? identity.serviceId ?? identity.apiKeyId ?? '';
    return id.replace(UNSAFE_IN_HEADER, '');
  },
};

/** The variables whose values differ between two requests of one route. */
const PER_REQUEST_VARIABLES: ReadonlySet<TemplateVariable> = new Set([
  'client_ip',
  'request_id',
  'consumer_id',
]);

const VARIABLE_OPENING = '${';

/** Whether the template names a value of the request itself (its client, its id, its caller). */
export function namesRequestValues(text: string): boolean {
  if (!text.includes(VARIABLE_OPENING)) return false;
  const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
  return (
    parsed.ok && parsed.parts.some((part) => 'variable' in part && PER_REQUEST_VARIABLES.has(part.variable))
  );
}

/**
 * Values with variables compiled lately, by text: routes of one tenant often carry the same values,
 * and a tenant's routes compile one after the other. Bounded: a few hundred KB at most.
 */
const RECENT_CAPACITY = 1024;
const recent = new Map<string, ValueTemplate>();

/** A value that does not parse is sent as written (commands refuse it; a stored route keeps it). */
export function compileValueTemplate(text: string): ValueTemplate {
  if (!text.includes(VARIABLE_OPENING)) return text;
  let compiled = recent.get(text);
  if (compiled === undefined) {
    compiled = compileVariables(text);
    if (recent.size === RECENT_CAPACITY) recent.delete(recent.keys().next().value!);
    recent.set(text, compiled);
  }
  return compiled;
}

function compileVariables(text: string): ValueTemplate {
  const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
  if (!parsed.ok || parsed.parts.every((part) => 'literal' in part)) return text;
  const parts = parsed.parts.map((part) => ('literal' in part ? part.literal : VARIABLES[part.variable]));
  if (parts.length === 1) return parts[0]!;
  return (exchange) => {
    let value = '';
    for (const part of parts) value += typeof part === 'string' ? part : part(exchange);
    return value;
  };
}
