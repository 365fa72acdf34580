import { createHash } from 'node:crypto';
import type { IpRules } from '@vantageedge/shared/domain/route-policies';
import { AddressMatcher } from '@vantageedge/shared/gateway-policies/address-matcher';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { failExchange } from '../pipeline/errors.js';
import { rememberVerdicts, VerdictBudget } from '../pipeline/remembered-verdicts.js';
import type { RoutePolicy, RouteStage } from '../pipeline/stage.js';

/**
 * IP allow / deny lists on the client address (as the gateway resolved it: the peer, or the address
 * trusted proxies forwarded). A route's `ip_rules` replace the tenant-wide `settings.ip_rules`. Deny
 * wins; a non-empty allow list admits only its ranges. Refused: 403 `ip_denied`, before CORS and
 * authentication (a refused address learns nothing about the route). A request no route takes is
 * judged by the tenant-wide rules (refusedByTenantIpRules), as APISIX runs its global rules before its
 * 404: the 404 would tell a refused address which of the tenant's paths have routes. An ambiguous path
 * or query, by the rules of the routes its readings reach (refusedByIpRulesOfAll): its refusal names
 * the query parameter, and tells that routes are there.
 *
 * A rule set is compiled once and its stage shared: by every route of the tenant that applies the
 * tenant-wide rules (the same object in one snapshot), and by the tenant's next snapshot versions while
 * the rules are equal (same fingerprint). A snapshot with 1,000 routes under 400 tenant-wide ranges
 * compiles them once, and a version that changed something else compiles no IP rules at all.
 */
export function createIpRulesPolicy(): RoutePolicy {
  const stages = new CompiledIpRules();
  return {
    name: 'ip_rules',
    readsOrigins: false,
    compiledFrom: (tenant) => JSON.stringify(tenant.settings.ip_rules ?? null),
    compileRoute({ tenant, route }) {
      const rules = route.ip_rules ?? tenant.settings.ip_rules ?? null;
      return rules === null ? null : stages.stageFor(tenant.id, rules);
    },
    tenantApplied(tenant) {
      const rules = tenant.snapshot.tenant.settings.ip_rules ?? null;
      const stage = rules === null ? null : stages.stageFor(tenant.id, rules);
      if (stage !== null) tenantStages.set(tenant, stage);
    },
    tenantRetired(tenant, replacement) {
      if (replacement === undefined) stages.tenantRemoved(tenant.id);
    },
  };
}

/** What a refused address is told, on a route and on a path no route takes alike. */
export const IP_DENIED_MESSAGE = 'requests from this address are not allowed on this route';

/** Each applied tenant version's tenant-wide rules (none when it has none). */
const tenantStages = new WeakMap<CompiledTenant, IpRulesStage>();

/** Whether the tenant-wide `settings.ip_rules` refuse `clientIp`: asked of a request no route takes. */
export function refusedByTenantIpRules(tenant: CompiledTenant, clientIp: string): boolean {
  return tenantStages.get(tenant)?.refuses(clientIp) === true;
}

/**
 * Whether the IP rules of each of `routes` refuse `clientIp`: asked of an ambiguous request, which
 * none of them handles. An address one of them admits may reach that route anyway.
 */
export function refusedByIpRulesOfAll(routes: readonly CompiledRoute[], clientIp: string): boolean {
  return (
    routes.length > 0 &&
    routes.every((route) => {
      const stage = route.stages.clientAddress;
      return stage !== undefined && isIpRulesStage(stage) && stage.refuses(clientIp);
    })
  );
}

interface IpRulesStage extends RouteStage {
  refuses(clientIp: string): boolean;
}

function isIpRulesStage(stage: RouteStage): stage is IpRulesStage {
  return stage.name === 'ip_rules' && 'refuses' in stage;
}

/** null: the rules are empty (no stage). */
type Compiled = IpRulesStage | null;

/** By all of a tenant's IP rule sets together (≈0.45 MB at most). */
const TENANT_ADDRESSES_REMEMBERED = 4096;

/** A tenant's compiled rule sets, and the client addresses their stages remember together. */
interface TenantIpRules {
  readonly addresses: VerdictBudget;
  /** By fingerprint, held weakly. */
  readonly stages: Map<string, WeakRef<IpRulesStage>>;
}

/**
 * The stages compiled for each tenant's rule sets. By object for the snapshot being compiled; by
 * tenant and fingerprint across versions, held weakly: an entry lives as long as a compiled tenant
 * version (or the one being compiled) uses its stage, and is dropped after the GC collects it.
 */
class CompiledIpRules {
  readonly #byObject = new WeakMap<IpRules, Compiled>();
  readonly #tenants = new Map<string, TenantIpRules>();
  readonly #forget = new FinalizationRegistry<{ tenant: TenantIpRules; key: string }>(({ tenant, key }) => {
    if (tenant.stages.get(key)?.deref() === undefined) tenant.stages.delete(key);
  });

  stageFor(tenantId: string, rules: IpRules): Compiled {
    const known = this.#byObject.get(rules);
    if (known !== undefined) return known;
    if (rules.allow.length === 0 && rules.deny.length === 0) {
      this.#byObject.set(rules, null);
      return null;
    }
    const tenant = this.#tenant(tenantId);
    const key = fingerprint(rules);
    let stage: Compiled | undefined = tenant.stages.get(key)?.deref();
    if (stage === undefined) {
      stage = ipRulesStage(rules, tenant.addresses);
      if (stage !== null) {
        tenant.stages.set(key, new WeakRef(stage));
        this.#forget.register(stage, { tenant, key });
      }
    }
    this.#byObject.set(rules, stage);
    return stage;
  }

  /** Its stages are no longer reused (a returning tenant starts a new budget), and forget. */
  tenantRemoved(tenantId: string): void {
    this.#tenants.get(tenantId)?.addresses.forgetAll();
    this.#tenants.delete(tenantId);
  }

  #tenant(tenantId: string): TenantIpRules {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = { addresses: new VerdictBudget(TENANT_ADDRESSES_REMEMBERED), stages: new Map() };
      this.#tenants.set(tenantId, tenant);
    }
    return tenant;
  }
}

/** SHA-256 of the lists as written (order included): equal lists compile to equal matchers. */
function fingerprint(rules: IpRules): string {
  return createHash('sha256')
    .update(JSON.stringify([rules.allow, rules.deny]))
    .digest('base64');
}

function ipRulesStage(rules: IpRules, addresses: VerdictBudget): IpRulesStage | null {
  const deny = new AddressMatcher(rules.deny);
  const allow = new AddressMatcher(rules.allow);
  if (deny.size === 0 && allow.size === 0) return null;
  const refused = rememberVerdicts(
    (address) => deny.has(address) || (allow.size > 0 && !allow.has(address)),
    addresses,
  );
  return {
    name: 'ip_rules',
    refuses: refused,
    onRequest(exchange) {
      if (refused(exchange.clientIp)) {
        failExchange(exchange, 403, 'ip_denied', IP_DENIED_MESSAGE);
        return 'handled';
      }
      return 'continue';
    },
    refusesOpenConnection: ({ clientIp }) => (refused(clientIp) ? 'ip_denied' : undefined),
  };
}
