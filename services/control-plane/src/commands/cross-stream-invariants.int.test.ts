import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Invariants that span streams, tenants or requests, each under commands sent at once: exactly one
 * winner, the others a clear 4xx naming what they lost on, never a 5xx; the read models agree.
 */
describe('invariants under concurrent commands', () => {
  let cp: ControlPlaneHarness;
  const post = (path: string, body: unknown, headers?: Record<string, string>) =>
    cp.request('POST', path, { body, ...(headers ? { headers } : {}) });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  const errorOf = (response: ApiResponse) =>
    json(response)['error'] as { code: string; details: Array<{ field: string }> };
  let tenants = 0;
  const newTenant = async () => {
    tenants += 1;
    const created = await post('/api/v1/tenants', { name: `inv ${tenants}`, subdomain: `inv-${tenants}` });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return idOf(created);
  };
  /** The read models once they caught up with `position`. */
  const readAt = (path: string, position: bigint) =>
    cp.request('GET', path, { headers: { 'X-Min-Position': position.toString() } });
  const headPosition = () => cp.store.headPosition();

  function expectOneWinner(
    answers: ApiResponse[],
    winner: number,
    loser: number,
    code: string,
    field: string,
  ) {
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === winner).length, JSON.stringify(statuses)).toBe(1);
    for (const answer of answers.filter((a) => a.status !== winner)) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(loser);
      expect(errorOf(answer).code).toBe(code);
      expect(errorOf(answer).details.map((detail) => detail.field)).toEqual([field]);
    }
  }

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('gives a subdomain to one of the tenants created with it at once', async () => {
    for (let round = 0; round < 5; round++) {
      const subdomain = `contested-${round}`;
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => post('/api/v1/tenants', { name: `c${round}-${i}`, subdomain })),
      );
      expectOneWinner(answers, 201, 409, 'conflict', 'subdomain');
    }
  });

  it('gives a custom domain to one of the tenants claiming it at once', async () => {
    const claimants = await Promise.all(Array.from({ length: 6 }, () => newTenant()));
    for (let round = 0; round < 5; round++) {
      const domain = `shop-${round}.contested.test`;
      const answers = await Promise.all(
        claimants.map((tenant) => post(`/api/v1/tenants/${tenant}/domains`, { domain, verified: true })),
      );
      expectOneWinner(answers, 201, 409, 'conflict', 'domain');
      const winner = claimants[answers.findIndex((answer) => answer.status === 201)]!;
      const position = await headPosition();
      for (const tenant of claimants) {
        const listed = await readAt(`/api/v1/tenants/${tenant}/domains`, position);
        expect(listed.status).toBe(200);
        const domains = (json(listed)['data'] as Array<{ domain: string }>).map((d) => d.domain);
        expect(domains.includes(domain)).toBe(tenant === winner);
      }
    }
  });

  it('keeps an owner when the two owners are removed or demoted at once', async () => {
    for (let round = 0; round < 6; round++) {
      const tenant = await newTenant();
      const owners = [];
      for (const n of [1, 2]) {
        const created = await post('/api/v1/users', {
          tenant_id: tenant,
          clerk_user_id: `user_owner_${tenant.slice(0, 8)}_${n}`,
          email: `owner${n}@example.com`,
          role: 'owner',
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        owners.push(idOf(created));
      }
      const [a, b] = owners as [string, string];
      const answers = await Promise.all(
        round % 2 === 0
          ? [cp.request('DELETE', `/api/v1/users/${a}`), cp.request('DELETE', `/api/v1/users/${b}`)]
          : [
              cp.request('PATCH', `/api/v1/users/${a}`, { body: { role: 'admin' } }),
              cp.request('DELETE', `/api/v1/users/${b}`),
            ],
      );
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.filter((status) => status < 300).length, JSON.stringify(statuses)).toBe(1);
      const refused = answers.find((answer) => answer.status >= 300)!;
      expect(refused.status, JSON.stringify(refused.body)).toBe(409);
      expect(errorOf(refused).code).toBe('conflict');

      const listed = await readAt(`/api/v1/users?tenant_id=${tenant}`, await headPosition());
      const roles = (json(listed)['data'] as Array<{ role: string }>).map((user) => user.role);
      expect(roles.filter((role) => role === 'owner')).toHaveLength(1);
    }
  });

  it('runs one of the requests sent at once with one Idempotency-Key and different bodies', async () => {
    const tenant = await newTenant();
    for (let round = 0; round < 5; round++) {
      const headers = { 'Idempotency-Key': `race-${tenant}-${round}` };
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          post(
            '/api/v1/origins',
            { tenant_id: tenant, name: `idem-${round}-${i}`, url: 'https://i.example.com' },
            headers,
          ),
        ),
      );
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.filter((status) => status === 201).length, JSON.stringify(statuses)).toBe(1);
      for (const answer of answers.filter((a) => a.status !== 201)) {
        expect([409, 422], JSON.stringify(answer.body)).toContain(answer.status);
        expect(errorOf(answer).code).toBe(answer.status === 409 ? 'conflict' : 'idempotency_key_reused');
      }
    }
    const origins = await readAt(`/api/v1/origins?tenant_id=${tenant}`, await headPosition());
    expect((json(origins)['data'] as unknown[]).length).toBe(5);
  });

  it('serialises config applies sent at once: the config is one of the documents, whole', async () => {
    const tenant = await newTenant();
    const documentOf = (n: number) => ({
      tenant: { name: `inv ${tenants}`, subdomain: `inv-${tenants}` },
      origins: [{ name: `o${n}`, url: `https://o${n}.example.com` }],
      routes: [0, 1].map((r) => ({ origin: `o${n}`, path_pattern: `/doc${n}/r${r}/*`, auth_mode: 'public' })),
    });
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, n) => post(`/api/v1/tenants/${tenant}/config/apply`, documentOf(n))),
    );
    for (const answer of answers) expect([200, 409], JSON.stringify(answer.body)).toContain(answer.status);
    const config = json(await readAt(`/api/v1/tenants/${tenant}/config`, await headPosition())) as {
      origins: Array<{ name: string }>;
      routes: Array<{ path_pattern: string }>;
    };
    expect(config.origins).toHaveLength(1);
    const n = Number(config.origins[0]!.name.slice(1));
    expect(config.routes.map((route) => route.path_pattern).sort()).toEqual([
      `/doc${n}/r0/*`,
      `/doc${n}/r1/*`,
    ]);
  });

  it('answers writes piling up on one stream 200 or 409 conflict, never a 5xx', async () => {
    const tenant = await newTenant();
    const origin = idOf(
      await post('/api/v1/origins', { tenant_id: tenant, name: 'o', url: 'https://o.example.com' }),
    );
    const route = idOf(
      await post('/api/v1/routes', {
        tenant_id: tenant,
        origin_id: origin,
        path_pattern: '/p/*',
        auth_mode: 'public',
      }),
    );
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        cp.request('PATCH', `/api/v1/routes/${route}`, { body: { path_pattern: `/p${i}/*` } }),
      ),
    );
    for (const answer of answers) {
      expect([200, 409], JSON.stringify(answer.body)).toContain(answer.status);
      if (answer.status === 409) expect(errorOf(answer).code).toBe('conflict');
    }
    const last = answers.filter((answer) => answer.status === 200).at(-1);
    expect(last).toBeDefined();
  });

  it('leaves one working key when a key is rotated and revoked at once', async () => {
    const tenant = await newTenant();
    for (let round = 0; round < 5; round++) {
      const key = idOf(await post('/api/v1/api-keys', { tenant_id: tenant, name: `k${round}` }));
      const [rotated, revoked] = await Promise.all([
        post(`/api/v1/api-keys/${key}/rotate`, { grace_period_seconds: 0 }),
        cp.request('DELETE', `/api/v1/api-keys/${key}`),
      ]);
      expect([201, 409], JSON.stringify(rotated!.body)).toContain(rotated!.status);
      expect([204, 409], JSON.stringify(revoked!.body)).toContain(revoked!.status);
      const position = await headPosition();
      const keys = json(await readAt(`/api/v1/api-keys?tenant_id=${tenant}`, position))['data'] as Array<{
        id: string;
        name: string;
        revoked_at: string | null;
        expires_at: string | null;
      }>;
      const now = Date.now();
      const working = (k: (typeof keys)[number]) =>
        k.revoked_at === null && (k.expires_at === null || Date.parse(k.expires_at) > now);
      const active = keys.filter((k) => k.name === `k${round}` && working(k));
      // A rotation that lost to the revoke took its new key back; one that won leaves the new key.
      expect(active.length).toBe(rotated!.status === 201 ? 1 : 0);
    }
  });

  it('deletes a tenant once when deleted twice at once', async () => {
    const tenant = await newTenant();
    const answers = await Promise.all([0, 1, 2].map(() => cp.request('DELETE', `/api/v1/tenants/${tenant}`)));
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses[0]).toBe(204);
    for (const answer of answers.filter((a) => a.status !== 204)) {
      expect([404, 409], JSON.stringify(answer.body)).toContain(answer.status);
    }
    const deletions = (await cp.allEvents()).filter(
      (event) => event.type === 'TenantDeleted' && (event.data as { tenant_id: string }).tenant_id === tenant,
    );
    expect(deletions).toHaveLength(1);
  });
});
