import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantWithViewerAndAdmin, expectAdminRateLimited } from '../testing/admin-limits.js';
import { type ControlPlaneHarness, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression test: a tenant's share of the documents in flight (half of
 * CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT) was one for every role, and a plan takes its announced bytes
 * before its body arrives. So a viewer (or a leaked read-only token) starting plans of large documents
 * and never finishing their upload held the whole share, and the tenant's admins could not apply a
 * document (429) for as long as the uploads stayed open. The documents of callers with read access only
 * now hold at most half of the tenant's share.
 */

const HELD_DOCUMENT_BYTES = 40_000;
const TENANT_SHARE = 2 * HELD_DOCUMENT_BYTES;
const READERS_SHARE = TENANT_SHARE / 2;

let cp: ControlPlaneHarness;
let tenantId: string;
let subdomain: string;
let viewer: string;
let admin: string;

const documentText = () =>
  JSON.stringify({ format: 1, tenant: { name: 'Docs Roles', subdomain }, origins: [], routes: [] });

/** A plan by `token` whose upload has begun and never ends (until aborted): the status it got, if any. */
function heldPlan(token: string) {
  const url = new URL(`${cp.baseUrl}/api/v1/tenants/${tenantId}/config/plan`);
  const req = http.request(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'content-length': String(HELD_DOCUMENT_BYTES),
    },
  });
  const answer = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
  req.write(documentText());
  return { answer, abort: () => req.destroy() };
}

/** Resolves once the control plane holds `bytes` of documents. */
async function documentBytesHeld(bytes: number): Promise<void> {
  await expect
    .poll(
      async () =>
        (await cp.metrics.getSingleMetric('vantageedge_control_plane_document_bytes_in_flight')?.get())
          ?.values[0]?.value,
      { timeout: 20_000 },
    )
    .toBe(bytes);
}

beforeAll(async () => {
  cp = await startControlPlane({ documentBytesInFlight: 2 * TENANT_SHARE });
  subdomain = `docs-roles-${Date.now()}`;
  ({ tenantId, viewer, admin } = await createTenantWithViewerAndAdmin(
    cp,
    'Docs Roles',
    subdomain,
    'docs_roles',
  ));
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('a tenant’s documents in flight and its roles', () => {
  it('a viewer’s unfinished uploads hold at most the readers’ half of the tenant’s share: an admin’s apply runs', async () => {
    const first = heldPlan(viewer);
    let second: ReturnType<typeof heldPlan> | undefined;
    try {
      await documentBytesHeld(HELD_DOCUMENT_BYTES);
      second = heldPlan(viewer);
      let secondStatus: number | undefined;
      void second.answer.then((status) => {
        secondStatus = status;
      });
      // The second upload is either refused or holds its bytes too.
      await expect
        .poll(
          async () =>
            secondStatus ??
            (await cp.metrics.getSingleMetric('vantageedge_control_plane_document_bytes_in_flight')?.get())
              ?.values[0]?.value,
          { timeout: 20_000 },
        )
        .toBeOneOf([429, TENANT_SHARE]);

      const applied = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/apply`, {
        token: admin,
        rawBody: documentText().padEnd(HELD_DOCUMENT_BYTES, ' '),
        headers: { 'content-type': 'application/json' },
      });
      expect(applied.status, JSON.stringify(applied.body)).toBe(200);
      expect(secondStatus, 'the viewer’s second upload').toBe(429);
      await documentBytesHeld(READERS_SHARE);

      const third = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/plan`, {
        token: viewer,
        rawBody: documentText(),
        headers: { 'content-type': 'application/json' },
      });
      expectAdminRateLimited(
        third,
        'tenant_document_bytes_in_flight',
        `the documents of one tenant's read-only callers may hold ${READERS_SHARE} bytes at once (half of the tenant's share, the rest is for its writers)`,
      );
    } finally {
      first.abort();
      second?.abort();
    }
  }, 90_000);
});
