import { randomUUID } from 'node:crypto';
import { DEFAULT_TENANT_LIMITS } from '@vantageedge/control-plane/commands/tenant-limits';
import {
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import { compileSnapshot } from '@vantageedge/gateway/testing/compile-snapshot';
import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { AddressMatcher } from '@vantageedge/shared/gateway-policies/address-matcher';
import { normalizePath } from '@vantageedge/shared/routing/normalize-path';
import { compileStripPrefix } from '@vantageedge/shared/routing/strip-prefix';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerProblem, replicaSnapshot } from './compile-differential.js';
import { mutated, type RouteMutation, routeMutations } from './route-mutations.js';

/**
 * Differential fuzzing of the route commands against the gateway: valid route bodies, each mutated in
 * one or two fields with edge values (route-mutations.ts), go through the admin API; the events it
 * stores are folded into the tenant's snapshot as the snapshot projector does, sent through the
 * snapshot codec and compiled as a replica compiles it. A command is answered 2xx or a 4xx naming the
 * field, never 5xx; what is accepted compiles without a warning, and every accepted route serves with
 * what its admin configured. Seeded: the same cases every run (DIFFERENTIAL_CASES explores more).
 */

const SEED = 20_261_203;
const CASES = Number(process.env['DIFFERENTIAL_CASES'] ?? 200);
const ROUTE_FIELDS = new Set([
  'tenant_id',
  'origin_id',
  'path_pattern',
  'methods',
  'priority',
  'auth_mode',
  'required_scopes',
  'require_tenant_org',
  'allow_any_authenticated_user',
  'websocket_token',
  'strip_prefix',
  'rate_limit',
  'cache_policy',
  'match',
  'cors',
  'ip_rules',
  'request_headers',
  'response_headers',
  'rewrite_path',
  'preserve_host',
  'query',
  'timeouts',
  'retries',
  'max_body_bytes',
  'max_header_bytes',
  'traffic_split',
  'fixed_response',
  'redirect',
  // Limits of the whole body: TENANT_MAX_ROUTE_BYTES and friends.
  'route',
  'body',
]);

let cp: ControlPlaneHarness;
let tenantId = '';
let mainOrigin = '';
let otherOrigin = '';

beforeAll(async () => {
  cp = await startControlPlane({
    adminRateLimits: { limits: { tenantCommands: null, userRequests: null } },
    // Every accepted case stays a route of the one tenant.
    tenantLimits: { ...DEFAULT_TENANT_LIMITS, routes: 100_000 },
  });
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Fuzz', subdomain: 'fz' } });
  tenantId = json(tenant)['id'] as string;
  const origin = async (name: string) =>
    json(
      await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name, url: 'http://127.0.0.1:9' },
      }),
    )['id'] as string;
  mainOrigin = await origin('main');
  otherOrigin = await origin('other');
});
afterAll(async () => {
  await cp?.close();
});

/** Valid route bodies, each exercising different policies, that the mutations start from. */
function baseRoutes(): Array<Record<string, unknown>> {
  return [
    {
      tenant_id: tenantId,
      auth_mode: 'public',
      origin_id: mainOrigin,
      path_pattern: '/fz/:id/*',
      methods: ['GET'],
    },
    {
      tenant_id: tenantId,
      auth_mode: 'public',
      origin_id: mainOrigin,
      path_pattern: '/fz/a',
      strip_prefix: '/fz',
    },
    {
      tenant_id: tenantId,
      auth_mode: 'public',
      origin_id: null,
      path_pattern: '/fz/fixed',
      fixed_response: { status: 200, body: 'ok' },
    },
    {
      tenant_id: tenantId,
      auth_mode: 'public',
      origin_id: mainOrigin,
      path_pattern: '/fz/x/:id',
      rewrite_path: { template: '/v2/:id' },
      traffic_split: {
        origins: [
          { origin_id: mainOrigin, weight: 9 },
          { origin_id: otherOrigin, weight: 1 },
        ],
      },
    },
  ];
}

interface FuzzCase {
  base: number;
  mutations: RouteMutation[];
}

function fuzzCases(): FuzzCase[] {
  const catalogue = routeMutations({ main: mainOrigin, other: otherOrigin, unknown: randomUUID() });
  const arbitrary = fc.record({
    base: fc.nat({ max: baseRoutes().length - 1 }),
    mutations: fc.array(fc.constantFrom(...catalogue), { minLength: 1, maxLength: 2 }),
  });
  // Every mutation once on the first base, then random combinations.
  const singles = catalogue.map((mutation, index) => ({ base: index % 4, mutations: [mutation] }));
  return [...singles, ...fc.sample(arbitrary, { seed: SEED, numRuns: CASES })];
}

/** What the gateway would silently leave out of a route its admin configured. */
function droppedPolicies(route: RouteConfig): string[] {
  const dropped: string[] = [];
  const strip = route.strip_prefix;
  if (strip !== null && strip !== '' && strip !== '/' && compileStripPrefix(strip) === null) {
    dropped.push(`strip_prefix ${JSON.stringify(strip)} is ignored`);
  }
  const from = route.rewrite_path?.from_prefix;
  if (from !== undefined && !normalizePath(from, 'keep').ok) {
    dropped.push(`rewrite_path.from_prefix ${JSON.stringify(from)} matches no request path`);
  }
  for (const list of ['allow', 'deny'] as const) {
    const cidrs = route.ip_rules?.[list] ?? [];
    const compiled = new AddressMatcher(cidrs).size;
    if (compiled !== cidrs.length) {
      dropped.push(`ip_rules.${list}: ${cidrs.length - compiled} of ${JSON.stringify(cidrs)} ignored`);
    }
  }
  return dropped;
}

/** A refusal names a field of a route body, or one of those the case sent. */
function namesRouteField(sentFields: readonly string[]): (field: string) => boolean {
  const sent = new Set([...ROUTE_FIELDS, ...sentFields]);
  return (field) => sent.has(field.split('.')[0] ?? '');
}

describe('route commands against the gateway compile', () => {
  it('answers every mutated route 2xx or a 4xx naming a field, and compiles what it accepted', async () => {
    const problems: string[] = [];
    const accepted = new Map<string, string>();
    // One route per base that every case also PATCHes with its mutations.
    const patched: string[] = [];
    for (const body of baseRoutes()) {
      const created = await cp.request('POST', '/api/v1/routes', { body });
      patched.push(json(created)['id'] as string);
    }
    for (const fuzz of fuzzCases()) {
      const fields = fuzz.mutations.map((mutation) => mutation.field);
      const label = `base ${fuzz.base} ${JSON.stringify(fuzz.mutations).slice(0, 300)}`;
      const body = fuzz.mutations.reduce(mutated, baseRoutes()[fuzz.base]!);
      const created = await cp.request('POST', '/api/v1/routes', { body });
      const createProblem = answerProblem(created, namesRouteField(fields));
      if (createProblem) problems.push(`POST ${label}: ${createProblem}`);
      if (created.status === 201) accepted.set(json(created)['id'] as string, label);

      const routeId = patched[fuzz.base]!;
      const patch = Object.fromEntries(fuzz.mutations.map((mutation) => [mutation.field, mutation.value]));
      const changed = await cp.request('PATCH', `/api/v1/routes/${routeId}`, { body: patch });
      const patchProblem = answerProblem(changed, namesRouteField(fields));
      if (patchProblem) problems.push(`PATCH ${label}: ${patchProblem}`);
      if (changed.status === 200) accepted.set(routeId, `PATCH ${label}`);
    }

    const snapshot = replicaSnapshot(await cp.allEvents(), tenantId, (event, message) => {
      const routeId = (event.data as { route_id?: string }).route_id ?? event.type;
      problems.push(
        `the snapshot projector skips ${accepted.get(routeId) ?? routeId}: ${message.slice(0, 300)}`,
      );
    });
    const { tenant, warnings } = compileSnapshot(snapshot);
    for (const warning of warnings) {
      const routeId = [...accepted.keys()].find((id) => warning.includes(id));
      problems.push(`gateway warns "${warning}" for ${routeId ? accepted.get(routeId) : 'the tenant'}`);
    }
    const compiled = new Set(tenant?.routes.map((route) => route.config.id));
    for (const [routeId, label] of accepted) {
      if (!compiled.has(routeId)) problems.push(`route of ${label} is not compiled`);
    }
    for (const route of snapshot.routes) {
      for (const dropped of droppedPolicies(route)) problems.push(`${dropped}: ${accepted.get(route.id)}`);
    }

    expect(accepted.size).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  }, 600_000);
});
