import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdminResponse,
  adminRequest,
  ENTRY_POINTS,
  startService,
  stopAllServices,
  TestSystem,
} from './harness.js';

/**
 * Two control-plane processes on one event store, as production runs them, sent conflicting commands
 * at the same moment, round after round: what must be unique across tenants (a subdomain, a Clerk
 * organisation, a verified custom domain), a tenant's counted limits and an Idempotency-Key's one answer
 * hold whichever process each command reaches. Each loser gets a clear 409/422, never a 5xx; the event
 * log and the read models agree on the one holder.
 */
const LIMITS = { routes: 3, apiKeys: 3, members: 3 };

let system: TestSystem;
/** The two control planes' base URLs. */
const instances: string[] = [];
let token = '';

function startControlPlaneProcess(): Promise<string> {
  return system.startControlPlane(`control-plane ${instances.length + 1}`, {
    TENANT_MAX_ROUTES: String(LIMITS.routes),
    TENANT_MAX_API_KEYS: String(LIMITS.apiKeys),
    TENANT_MAX_MEMBERS: String(LIMITS.members),
    // One admin sends every command here: its per-caller limits are not what is tested.
    CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT: '0',
    CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT: '0',
  });
}

function call(
  instance: number,
  method: string,
  pathname: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<AdminResponse> {
  return adminRequest(instances[instance] ?? '', method, pathname, { body, token, headers });
}

const idOf = (response: AdminResponse) => response.body['id'] as string;
const errorOf = (response: AdminResponse) =>
  response.body['error'] as { code: string; details?: Array<{ field: string }> } | undefined;

/** Exactly one answer is `winner`; every other is `loser` with `code` naming `field`. */
function expectOneWinner(
  answers: AdminResponse[],
  winner: number,
  loser: number,
  code: string,
  field: string,
) {
  const statuses = answers.map((answer) => answer.status);
  expect(statuses.filter((status) => status === winner).length, JSON.stringify(statuses)).toBe(1);
  for (const answer of answers.filter((a) => a.status !== winner)) {
    expect(answer.status, answer.text).toBe(loser);
    expect(errorOf(answer)?.code, answer.text).toBe(code);
    expect(
      errorOf(answer)?.details?.map((detail) => detail.field),
      answer.text,
    ).toEqual([field]);
  }
}

/** A read on `instance` once the read models include every event appended so far. */
async function readCaughtUp(instance: number, pathname: string): Promise<AdminResponse> {
  const { rows } = await system.database.pool.query<{ value: string }>(
    'select value::text from event_store_position',
  );
  return call(instance, 'GET', pathname, undefined, { 'X-Min-Position': rows[0]!.value });
}

interface LoggedEvent {
  type: string;
  data: Record<string, unknown>;
  tenant_id: string | null;
}

async function eventLog(types: readonly string[]): Promise<LoggedEvent[]> {
  const { rows } = await system.database.pool.query<LoggedEvent>(
    `select type, data, metadata ->> 'tenant_id' as tenant_id from event_store_events
      where type = any($1) order by position`,
    [types],
  );
  return rows;
}

/** Live tenants by the value of `field` (subdomain, clerk_org_id) folded from the event log. */
async function tenantsHolding(field: 'subdomain' | 'clerk_org_id'): Promise<Map<string, string[]>> {
  const current = new Map<string, string | null>();
  for (const event of await eventLog(['TenantCreated', 'TenantUpdated', 'TenantDeleted'])) {
    const tenant = event.data['tenant_id'] as string;
    if (event.type === 'TenantDeleted') current.delete(tenant);
    else current.set(tenant, (event.data[field] as string | null | undefined) ?? null);
  }
  const holders = new Map<string, string[]>();
  for (const [tenant, value] of current) {
    if (value !== null) holders.set(value, [...(holders.get(value) ?? []), tenant]);
  }
  return holders;
}

/**
 * Each value is held by one live tenant in the event log, and the event store's reservation of it names
 * that tenant's stream (what the next claim of it is refused on).
 */
async function expectOneHolderEach(field: 'subdomain' | 'clerk_org_id', reservationPrefix: string) {
  const { rows } = await system.database.pool.query<{ value: string; stream: string }>(
    'select value, stream from event_store_reservations where value like $1',
    [`${reservationPrefix}%`],
  );
  const reserved = new Map(rows.map((row) => [row.value.slice(reservationPrefix.length), row.stream]));
  for (const [value, holders] of await tenantsHolding(field)) {
    expect(holders, value).toHaveLength(1);
    expect(reserved.get(value), value).toBe(`tenant-${holders[0]}`);
  }
}

let tenants = 0;
async function newTenant(instance = 0, extra: Record<string, unknown> = {}): Promise<string> {
  tenants += 1;
  const created = await call(instance, 'POST', '/api/v1/tenants', {
    name: `Replica race ${tenants}`,
    subdomain: `replica-race-${tenants}`,
    ...extra,
  });
  expect(created.status, created.text).toBe(201);
  return idOf(created);
}

beforeAll(async () => {
  system = await TestSystem.create();
  token = await system.token();
  const readModels = startService('read-model-projector', ENTRY_POINTS.readModels, {
    ...system.commonEnv(),
    READ_MODEL_PROJECTOR_METRICS_PORT: '0',
  });
  system.services.push(readModels);
  const [first, second] = await Promise.all([
    startControlPlaneProcess(),
    startControlPlaneProcess(),
    readModels.waitForLine('read-model projector started', 60_000),
  ]);
  instances.push(first, second);
}, 120_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
}, 60_000);

describe('two control-plane processes on one event store', () => {
  it('gives a subdomain to one tenant when one renames to it on one process as another is created with it on the other', async () => {
    const rounds = 20;
    for (let round = 0; round < rounds; round++) {
      const subdomain = `contested-rename-${round}`;
      const [renamer, creator] = round % 2 === 0 ? [0, 1] : [1, 0];
      const renamed = await newTenant(renamer);
      const answers = await Promise.all([
        call(renamer, 'PATCH', `/api/v1/tenants/${renamed}`, { subdomain }),
        call(creator, 'POST', '/api/v1/tenants', { name: `Creator ${round}`, subdomain }),
      ]);
      const [patched, created] = answers as [AdminResponse, AdminResponse];
      const statuses = `${patched.status} ${created.status}`;
      expect(['200 409', '409 201'], `${patched.text} ${created.text}`).toContain(statuses);
      for (const loser of answers.filter((answer) => answer.status === 409)) {
        expect(errorOf(loser)?.code).toBe('conflict');
        expect(errorOf(loser)?.details?.map((detail) => detail.field)).toEqual(['subdomain']);
      }
      const holder = patched.status === 200 ? renamed : idOf(created);
      const read = await readCaughtUp(creator, `/api/v1/tenants/${holder}`);
      expect(read.body['subdomain'], read.text).toBe(subdomain);
      if (patched.status !== 200) {
        const kept = await readCaughtUp(renamer, `/api/v1/tenants/${renamed}`);
        expect(kept.body['subdomain'], kept.text).not.toBe(subdomain);
      }
    }
    await expectOneHolderEach('subdomain', 'subdomain:');
  });

  it('gives a subdomain to one of 20 tenants created or renamed to it at once across both processes', async () => {
    for (let round = 0; round < 5; round++) {
      const subdomain = `contested-many-${round}`;
      const renamed = await Promise.all(Array.from({ length: 10 }, (_, i) => newTenant(i % 2)));
      const answers = await Promise.all([
        ...renamed.map((tenant, i) => call(i % 2, 'PATCH', `/api/v1/tenants/${tenant}`, { subdomain })),
        ...Array.from({ length: 10 }, (_, i) =>
          call(i % 2, 'POST', '/api/v1/tenants', { name: `Many ${round}-${i}`, subdomain }),
        ),
      ]);
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.filter((status) => status < 300).length, JSON.stringify(statuses)).toBe(1);
      for (const loser of answers.filter((answer) => answer.status >= 300)) {
        expect(loser.status, loser.text).toBe(409);
        expect(errorOf(loser)?.details?.map((detail) => detail.field)).toEqual(['subdomain']);
      }
    }
    await expectOneHolderEach('subdomain', 'subdomain:');
  });

  it('maps a Clerk organisation to one of the tenants given it at once on both processes', async () => {
    for (let round = 0; round < 10; round++) {
      const org = `org_replica_race_${round}`;
      const moved = await newTenant(round % 2);
      const answers = await Promise.all([
        call(round % 2, 'PATCH', `/api/v1/tenants/${moved}`, { clerk_org_id: org }),
        call((round + 1) % 2, 'POST', '/api/v1/tenants', {
          name: `Org ${round}`,
          subdomain: `org-race-${round}`,
          clerk_org_id: org,
        }),
      ]);
      expect(answers.filter((answer) => answer.status < 300).length, answers.map((a) => a.text).join()).toBe(
        1,
      );
      for (const loser of answers.filter((answer) => answer.status >= 300)) {
        expect(loser.status, loser.text).toBe(409);
        expect(errorOf(loser)?.details?.map((detail) => detail.field)).toEqual(['clerk_org_id']);
      }
    }
    await expectOneHolderEach('clerk_org_id', 'clerk_org:');
  });

  it('gives a verified custom domain to one of the tenants assigned it at once on both processes', async () => {
    const claimants = await Promise.all(Array.from({ length: 4 }, (_, i) => newTenant(i % 2)));
    for (let round = 0; round < 10; round++) {
      const domain = `shop-${round}.replica-race.test`;
      const answers = await Promise.all(
        claimants.map((tenant, i) =>
          call((i + round) % 2, 'POST', `/api/v1/tenants/${tenant}/domains`, { domain, verified: true }),
        ),
      );
      expectOneWinner(answers, 201, 409, 'conflict', 'domain');
      const winner = claimants[answers.findIndex((answer) => answer.status === 201)]!;
      for (const [i, tenant] of claimants.entries()) {
        const listed = await readCaughtUp(i % 2, `/api/v1/tenants/${tenant}/domains`);
        const domains = (listed.body['data'] as Array<{ domain: string }>).map((d) => d.domain);
        expect(domains.includes(domain), listed.text).toBe(tenant === winner);
      }
    }
    const verified = new Map<string, Set<string>>();
    for (const event of await eventLog(['CustomDomainVerified', 'CustomDomainDeleted'])) {
      const domain = event.data['domain'] as string;
      const holders = verified.get(domain) ?? new Set<string>();
      if (event.type === 'CustomDomainVerified') holders.add(event.tenant_id!);
      else holders.delete(event.tenant_id!);
      verified.set(domain, holders);
    }
    const { rows } = await system.database.pool.query<{ value: string; stream: string }>(
      `select value, stream from event_store_reservations where value like 'custom_domain:%'`,
    );
    const reserved = new Map(rows.map((row) => [row.value.slice('custom_domain:'.length), row.stream]));
    for (const [domain, holders] of verified) {
      expect([...holders], domain).toHaveLength(1);
      expect(reserved.get(domain), domain).toBe(`tenant-${[...holders][0]}`);
    }
    expect(verified.size).toBe(10);
  });

  it('keeps TENANT_MAX_ROUTES, TENANT_MAX_API_KEYS and TENANT_MAX_MEMBERS with creates sent to both processes at once', async () => {
    const tenant = await newTenant();
    const origin = await call(0, 'POST', '/api/v1/origins', {
      tenant_id: tenant,
      name: 'o',
      url: 'https://o.example.com',
    });
    expect(origin.status, origin.text).toBe(201);
    const creates = (count: number, body: (i: number) => [string, unknown]) =>
      Promise.all(
        Array.from({ length: count }, (_, i) => {
          const [pathname, payload] = body(i);
          return call(i % 2, 'POST', pathname, payload);
        }),
      );
    const routes = await creates(20, (i) => [
      '/api/v1/routes',
      { tenant_id: tenant, origin_id: idOf(origin), path_pattern: `/r${i}/*`, auth_mode: 'public' },
    ]);
    const keys = await creates(20, (i) => ['/api/v1/api-keys', { tenant_id: tenant, name: `k${i}` }]);
    const members = await creates(20, (i) => [
      '/api/v1/users',
      {
        tenant_id: tenant,
        clerk_user_id: `user_replica_race_${i}`,
        email: `m${i}@example.com`,
        role: 'admin',
      },
    ]);
    for (const [answers, field, max] of [
      [routes, 'routes', LIMITS.routes],
      [keys, 'api_keys', LIMITS.apiKeys],
      [members, 'members', LIMITS.members],
    ] as const) {
      const statuses = answers.map((answer) => answer.status);
      // The tenant has no member yet (created by a platform admin); no route or key either.
      expect(statuses.filter((status) => status === 201).length, JSON.stringify(statuses)).toBe(max);
      for (const refused of answers.filter((answer) => answer.status !== 201)) {
        expect(refused.status, refused.text).toBe(422);
        expect(errorOf(refused)?.code, refused.text).toBe('limit_exceeded');
        expect(
          errorOf(refused)?.details?.map((detail) => detail.field),
          refused.text,
        ).toEqual([field]);
      }
    }
    const created = await eventLog(['RouteCreated', 'ApiKeyIssued', 'UserCreated']);
    const ofTenant = (type: string) =>
      created.filter((event) => event.type === type && event.tenant_id === tenant).length;
    expect(ofTenant('RouteCreated')).toBe(LIMITS.routes);
    expect(ofTenant('ApiKeyIssued')).toBe(LIMITS.apiKeys);
    expect(ofTenant('UserCreated')).toBe(LIMITS.members);
    const listed = await readCaughtUp(1, `/api/v1/routes?tenant_id=${tenant}`);
    expect((listed.body['data'] as unknown[]).length, listed.text).toBe(LIMITS.routes);
  });

  it('answers an Idempotency-Key sent to both processes at once once: one origin, one stored answer', async () => {
    const tenant = await newTenant();
    for (let round = 0; round < 10; round++) {
      const key = `replica-race-${round}`;
      const body = { tenant_id: tenant, name: `idem-${round}`, url: 'https://i.example.com' };
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          call(i % 2, 'POST', '/api/v1/origins', body, { 'Idempotency-Key': key }),
        ),
      );
      const ran = answers.filter((answer) => answer.status === 201);
      expect(ran.length, answers.map((a) => a.status).join()).toBeGreaterThanOrEqual(1);
      // Every 201 is the one stored answer replayed: the same origin.
      expect(new Set(ran.map(idOf)).size).toBe(1);
      for (const other of answers.filter((answer) => answer.status !== 201)) {
        expect(other.status, other.text).toBe(409);
        expect(errorOf(other)?.code, other.text).toBe('conflict');
      }
    }
    const origins = (await eventLog(['OriginCreated'])).filter((event) => event.tenant_id === tenant);
    expect(origins).toHaveLength(10);
    const { rows } = await system.database.pool.query<{ count: string }>(
      `select count(*) from control_plane_idempotency_keys where key like 'replica-race-%' and state = 'completed'`,
    );
    expect(Number(rows[0]!.count)).toBe(10);
  });
});
