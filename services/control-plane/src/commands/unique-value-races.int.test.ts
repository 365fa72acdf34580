import { reservation } from '@vantageedge/shared/domain/events';
import { heldWhileAppendsWait } from '@vantageedge/shared/testing/reservation-locks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Unique values moved between tenants by commands that meet in the event store: two tenants swapping
 * their subdomains or Clerk orgs (each released value claimed by the other command at that moment),
 * and a custom domain its holder removes while other tenants prove it.
 */
describe('unique values moved between tenants at once', () => {
  let cp: ControlPlaneHarness;
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  const errorOf = (response: ApiResponse) =>
    json(response)['error'] as { code: string; details: Array<{ field: string }> };
  let tenants = 0;
  const newTenant = async (names: { subdomain: string; clerk_org_id: string }) => {
    tenants += 1;
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: `swap ${tenants}`, ...names },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return idOf(created);
  };
  const tenant = async (id: string) => {
    const events = (await cp.allEvents()).filter(
      (event) => event.stream === `tenant-${id}` && event.type.startsWith('Tenant'),
    );
    return events.at(-1)?.data as { subdomain: string; clerk_org_id: string };
  };

  /** Every TXT value issued so far: each tenant's claim is proven whenever it asks. */
  const txt = new Set<string>();
  beforeAll(async () => {
    cp = await startControlPlane({
      customDomains: { baseDomains: ['vantageedge.dev'], lookupTxt: async () => [...txt] },
    });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it.each([
    ['subdomain', reservation.subdomain],
    ['clerk_org_id', reservation.clerkOrg],
  ] as const)(
    'answers two tenants swapping their %s at once 409 naming it, never a 5xx',
    async (field, reserved) => {
      const round = tenants;
      const names = (n: number) => ({
        subdomain: `swap-${round}-${n}`,
        clerk_org_id: `org_swap_${round}_${n}`,
      });
      const [a, b] = [await newTenant(names(1)), await newTenant(names(2))];
      const [x, y] = [names(1)[field], names(2)[field]];
      const patch = (id: string, value: string) => () =>
        cp.request('PATCH', `/api/v1/tenants/${id}`, { body: { [field]: value } });
      // b's rename reaches the held name first, a's second: each then holds a name the other claims.
      const answers = await heldWhileAppendsWait(cp.db.pool, [reserved(y)], [patch(b, x), patch(a, y)]);
      for (const answer of answers) {
        expect(answer.status).toBe('fulfilled');
        if (answer.status !== 'fulfilled') continue;
        expect(answer.value.status, JSON.stringify(answer.value.body)).toBe(409);
        expect(errorOf(answer.value).code).toBe('conflict');
        expect(errorOf(answer.value).details.map((detail) => detail.field)).toEqual([field]);
      }
      expect((await tenant(a))[field]).toBe(x);
      expect((await tenant(b))[field]).toBe(y);
    },
  );

  it('gives a domain its holder removes to one of the tenants proving it at that moment', async () => {
    for (let round = 0; round < 4; round++) {
      const domain = `moving-${round}.example.com`;
      const holder = await newTenant({ subdomain: `holder-${round}`, clerk_org_id: `org_holder_${round}` });
      const claimants = await Promise.all(
        Array.from({ length: 8 }, (_, n) =>
          newTenant({ subdomain: `claimant-${round}-${n}`, clerk_org_id: `org_claimant_${round}_${n}` }),
        ),
      );
      for (const tenant of [holder, ...claimants]) {
        const claimed = await cp.request('POST', `/api/v1/tenants/${tenant}/domains`, { body: { domain } });
        expect(claimed.status, JSON.stringify(claimed.body)).toBe(201);
        txt.add((json(claimed)['verification'] as { value: string }).value);
      }
      const verified = await cp.request('POST', `/api/v1/tenants/${holder}/domains/${domain}/verify`);
      expect(verified.status, JSON.stringify(verified.body)).toBe(200);

      const [removed, ...proofs] = await Promise.all([
        cp.request('DELETE', `/api/v1/tenants/${holder}/domains/${domain}`),
        ...claimants.map((tenant) =>
          cp.request('POST', `/api/v1/tenants/${tenant}/domains/${domain}/verify`),
        ),
      ]);
      expect(removed?.status, JSON.stringify(removed?.body)).toBe(204);
      const won = proofs.filter((proof) => proof.status === 200);
      expect(won.length, JSON.stringify(proofs.map((proof) => proof.status))).toBeLessThanOrEqual(1);
      for (const lost of proofs.filter((proof) => proof.status !== 200)) {
        expect(lost.status, JSON.stringify(lost.body)).toBe(409);
        expect(errorOf(lost).details.map((detail) => detail.field)).toEqual(['domain']);
      }
      const owner = await cp.store.reservationHolder(reservation.customDomain(domain));
      const winner = claimants[proofs.findIndex((proof) => proof.status === 200)];
      expect(owner).toBe(winner === undefined ? null : `tenant-${winner}`);
    }
  });
});
