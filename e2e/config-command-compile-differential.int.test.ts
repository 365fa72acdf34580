import { DEFAULT_TENANT_LIMITS } from '@vantageedge/control-plane/commands/tenant-limits';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import { compileSnapshot } from '@vantageedge/gateway/testing/compile-snapshot';
import type { OriginConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { AddressMatcher } from '@vantageedge/shared/gateway-policies/address-matcher';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerProblem, replicaSnapshot } from './compile-differential.js';
import { apiKeyMutations, originMutations, tenantSettingsMutations } from './config-mutations.js';
import type { RouteMutation } from './route-mutations.js';

/**
 * Differential fuzzing of the commands beside routes against the gateway: tenant settings, origins,
 * API keys and whole config documents (plan and apply), each mutated in one or two fields with edge
 * values (config-mutations.ts), go through the admin API; the events stored are folded into the
 * tenant's snapshot as the snapshot projector does, sent through the snapshot codec and compiled as a
 * replica compiles it. A command is answered 2xx or a 4xx naming the field, never 5xx; what is accepted
 * compiles without a warning and serves as configured; an applied document plans no further change.
 * Seeded: the same cases every run (DIFFERENTIAL_CASES explores more).
 */

const SEED = 20_261_204;
const CASES = Number(process.env['DIFFERENTIAL_CASES'] ?? 30);

let cp: ControlPlaneHarness;
let tenantId = '';
let subdomain = '';

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    adminRateLimits: { limits: { tenantCommands: null, userRequests: null } },
    tenantLimits: { ...DEFAULT_TENANT_LIMITS, origins: 100_000, targets: 1_000_000, apiKeys: 100_000 },
  });
  subdomain = `fzc${Date.now().toString(36)}`;
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Fuzz', subdomain } });
  tenantId = json(tenant)['id'] as string;
});
afterAll(async () => {
  await cp?.close();
});

/** A refusal names one of `fields`, or a field within one. */
function namesOneOf(fields: readonly string[]): (field: string) => boolean {
  return (field) => fields.some((name) => field.split('.').includes(name));
}

function withMutations(body: Record<string, unknown>, mutations: readonly RouteMutation[]) {
  return { ...body, ...Object.fromEntries(mutations.map(({ field, value }) => [field, value])) };
}

/** Every mutation once, then seeded combinations of one or two. */
function casesOf(catalogue: RouteMutation[], seed: number): RouteMutation[][] {
  const arbitrary = fc.array(fc.constantFrom(...catalogue), { minLength: 1, maxLength: 2 });
  return [...catalogue.map((mutation) => [mutation]), ...fc.sample(arbitrary, { seed, numRuns: CASES })];
}

/** What a replica's upstream set silently leaves out of an origin's targets as its admin wrote them. */
function droppedTargetParts(origin: OriginConfig): string[] {
  const dropped: string[] = [];
  for (const target of origin.targets) {
    const url = new URL(target.url);
    if (url.username !== '' || url.password !== '')
      dropped.push(`${target.url}: its credentials are not sent`);
    if (url.search !== '' || url.hash !== '')
      dropped.push(`${target.url}: its query or fragment is not sent`);
    if (url.port === '0') dropped.push(`${target.url}: port 0 is never connected to`);
  }
  return dropped;
}

/** What the gateway silently leaves out of the tenant-wide settings, or can never use. */
function droppedSettings(settings: TenantSnapshot['tenant']['settings']): string[] {
  const dropped: string[] = [];
  const rules = settings.ip_rules;
  for (const list of ['allow', 'deny'] as const) {
    const cidrs = rules?.[list] ?? [];
    const compiled = new AddressMatcher(cidrs).size;
    if (compiled !== cidrs.length)
      dropped.push(`settings.ip_rules.${list} ${JSON.stringify(cidrs)} is partly ignored`);
  }
  const keySet = settings.oidc ? new URL(settings.oidc.jwks_url) : null;
  // A gateway fetches the key set as written: a fetch refuses credentials, nothing answers on port 0.
  if (keySet && (keySet.username !== '' || keySet.password !== '' || keySet.port === '0')) {
    dropped.push(`settings.oidc.jwks_url ${keySet.href} is never fetched, its tokens never accepted`);
  }
  return dropped;
}

/** What a replica makes of the tenant's events so far: projector skips, compile warnings, dropped parts. */
async function compileProblems(): Promise<string[]> {
  const problems: string[] = [];
  const snapshot = replicaSnapshot(await cp.allEvents(), tenantId, (event, message) =>
    problems.push(
      `the snapshot projector skips ${event.type} ${JSON.stringify(event.data).slice(0, 300)}: ${message}`,
    ),
  );
  const { tenant, warnings } = compileSnapshot(snapshot);
  for (const warning of warnings) problems.push(`gateway warns "${warning}"`);
  if (tenant === undefined) problems.push('the gateway does not compile the tenant');
  for (const origin of snapshot.origins) {
    for (const dropped of droppedTargetParts(origin)) problems.push(`origin ${origin.name}: ${dropped}`);
  }
  problems.push(...droppedSettings(snapshot.tenant.settings));
  return problems;
}

describe('tenant, origin, API key and config document commands against the gateway compile', () => {
  it('answers every mutated command 2xx or a 4xx naming a field, and compiles what it accepted', async () => {
    const problems: string[] = [];
    const lastAccepted = new Map<string, string>();
    const note = (what: string, response: ApiResponse, fields: string[], label: string) => {
      const problem = answerProblem(response, namesOneOf(fields));
      if (problem) problems.push(`${what} ${label}: ${problem}`);
      if (response.status < 300) lastAccepted.set(what, label);
    };

    // Tenant settings: each case replaces the whole settings.
    for (const mutations of casesOf(tenantSettingsMutations(), SEED)) {
      const label = JSON.stringify(mutations).slice(0, 300);
      const settings = withMutations({}, mutations);
      const changed = await cp.request('PATCH', `/api/v1/tenants/${tenantId}`, { body: { settings } });
      note('PATCH tenant', changed, ['settings'], label);
      if (changed.status === 200) {
        const stored = json(changed)['settings'] as TenantSnapshot['tenant']['settings'];
        problems.push(...droppedSettings(stored).map((dropped) => `${dropped}: ${label}`));
      }
    }

    // Origins: created with the mutations, and one origin PATCHed with each.
    const baseOrigin = { tenant_id: tenantId, name: 'fuzzed', url: 'http://127.0.0.1:9' };
    const patchedOrigin = json(await cp.request('POST', '/api/v1/origins', { body: baseOrigin }))[
      'id'
    ] as string;
    for (const mutations of casesOf(originMutations(), SEED + 1)) {
      const label = JSON.stringify(mutations).slice(0, 300);
      const fields = mutations.map((mutation) => mutation.field);
      const body = withMutations(baseOrigin, mutations);
      if (fields.includes('targets') && !fields.includes('url')) delete body['url'];
      const created = await cp.request('POST', '/api/v1/origins', { body });
      note('POST origin', created, [...fields, 'url', 'targets'], label);
      if (created.status === 201) problems.push(...droppedTargetParts(json(created) as OriginConfig));
      const changed = await cp.request('PATCH', `/api/v1/origins/${patchedOrigin}`, {
        body: withMutations({}, mutations),
      });
      note('PATCH origin', changed, [...fields, 'targets'], label);
      if (changed.status === 200) problems.push(...droppedTargetParts(json(changed) as OriginConfig));
    }

    // API keys: created with the mutations; their quotas PATCHed on one key.
    const patchedKey = json(
      await cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name: 'fuzzed' } }),
    )['id'] as string;
    for (const mutations of casesOf(apiKeyMutations(), SEED + 2)) {
      const label = JSON.stringify(mutations).slice(0, 300);
      const fields = mutations.map((mutation) => mutation.field);
      const created = await cp.request('POST', '/api/v1/api-keys', {
        body: withMutations({ tenant_id: tenantId, name: 'fuzzed' }, mutations),
      });
      note('POST api key', created, fields, label);
      const quota = mutations.filter((mutation) => mutation.field === 'quota');
      if (quota.length === 0) continue;
      const changed = await cp.request('PATCH', `/api/v1/api-keys/${patchedKey}`, {
        body: withMutations({}, quota),
      });
      note('PATCH api key', changed, fields, label);
    }

    // Applied documents remove the origins above: the tenant is compiled with them first.
    problems.push(...(await compileProblems()));

    // Whole documents: the settings, an origin and a route naming it, mutated together.
    const documentCases = fc.sample(
      fc.record({
        settings: fc.option(fc.constantFrom(...tenantSettingsMutations()), { nil: undefined }),
        origin: fc.option(fc.constantFrom(...originMutations()), { nil: undefined }),
      }),
      { seed: SEED + 3, numRuns: CASES },
    );
    for (const [index, { settings, origin }] of documentCases.entries()) {
      const label = JSON.stringify({ settings, origin }).slice(0, 300);
      const originEntry = withMutations(
        { name: 'doc-origin', url: 'http://127.0.0.1:9' },
        origin ? [origin] : [],
      );
      if (origin?.field === 'targets') delete originEntry['url'];
      const document = {
        tenant: { name: 'Fuzz', subdomain, settings: settings ? withMutations({}, [settings]) : {} },
        origins: [originEntry],
        routes: [
          {
            origin: (originEntry['name'] as string | undefined) ?? 'doc-origin',
            path_pattern: `/doc/${index}`,
            auth_mode: 'public',
          },
        ],
      };
      const fields = ['tenant', 'origins', 'routes', 'settings'];
      const planned = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document });
      note('plan', planned, fields, label);
      const applied = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
        body: document,
      });
      note('apply', applied, fields, label);
      if (planned.status !== applied.status) {
        problems.push(`plan answered ${planned.status}, apply ${applied.status}: ${label}`);
      }
      if (applied.status !== 200) continue;
      const targets = (originEntry['targets'] as OriginConfig['targets'] | undefined) ?? [
        { url: originEntry['url'] as string, weight: 1 },
      ];
      problems.push(...droppedTargetParts({ targets } as OriginConfig).map((dropped) => `apply: ${dropped}`));
      const again = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, { body: document });
      const changes = json(again)['changes'] as unknown[] | undefined;
      if (again.status !== 200 || (changes?.length ?? 0) > 0) {
        problems.push(
          `an applied document plans more: ${label}: ${JSON.stringify(again.body).slice(0, 400)}`,
        );
      }
    }

    problems.push(...(await compileProblems()));

    expect(lastAccepted.size).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  }, 600_000);
});
