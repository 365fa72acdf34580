import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Each tenant document in flight (POST …/config/plan, …/config/apply) costs the process its body, its
 * parse, its validation and its plan: measured, a 3.6 MB document of 17,000 routes takes some 120 MB of
 * heap, and 25 of them at once (five tenants' admins, five each) took the control plane to 1.6 GB of RSS
 * while its one thread worked through them for a minute and a half. Here the documents of all tenants
 * may hold DOCUMENT_BYTES_IN_FLIGHT at once, one tenant at most half of it: uploads still arriving hold
 * their announced bytes, a burst past the budget is refused before its body is read, and another
 * tenant's small command is served all the while.
 */

const HELD_DOCUMENT_BYTES = 40_000;
const DOCUMENT_BYTES_IN_FLIGHT = 2 * HELD_DOCUMENT_BYTES;

let cp: ControlPlaneHarness;
const tenants: Array<{ id: string; name: string; subdomain: string }> = [];

function documentOf(tenant: { name: string; subdomain: string }): string {
  return JSON.stringify({
    format: 1,
    tenant: { name: tenant.name, subdomain: tenant.subdomain },
    routes: [],
  });
}

const plan = (tenant: { id: string; name: string; subdomain: string }) =>
  cp.request('POST', `/api/v1/tenants/${tenant.id}/config/plan`, {
    rawBody: documentOf(tenant),
    headers: { 'content-type': 'application/json' },
  });

/** A plan whose upload has begun (half of HELD_DOCUMENT_BYTES sent); `finish` sends the rest. */
function heldPlan(tenant: { id: string; name: string; subdomain: string }) {
  const body = documentOf(tenant).padEnd(HELD_DOCUMENT_BYTES, ' ');
  const url = new URL(`${cp.baseUrl}/api/v1/tenants/${tenant.id}/config/plan`);
  let answer!: Promise<number>;
  const req = http.request(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${cp.adminToken}`,
      'content-type': 'application/json',
      'content-length': String(HELD_DOCUMENT_BYTES),
    },
  });
  answer = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  req.write(body.slice(0, HELD_DOCUMENT_BYTES / 2));
  return {
    abort: () => req.destroy(),
    finish: () => {
      req.end(body.slice(HELD_DOCUMENT_BYTES / 2));
      return answer;
    },
  };
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

function refusedBy(response: ApiResponse): string {
  if (response.status !== 429) return `answered ${response.status}`;
  const error = json(response)['error'] as { code: string; details: Array<{ field: string }> };
  expect(error.code).toBe('admin_rate_limited');
  expect(response.headers.get('retry-after')).toBe('1');
  return error.details[0]?.field ?? '(no field)';
}

beforeAll(async () => {
  cp = await startControlPlane({ documentBytesInFlight: DOCUMENT_BYTES_IN_FLIGHT });
  for (const name of ['docs-a', 'docs-b', 'docs-c']) {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name, subdomain: `${name}-${Date.now()}` },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const tenant = json(created);
    tenants.push({ id: String(tenant['id']), name, subdomain: String(tenant['subdomain']) });
  }
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

describe('tenant documents in flight', () => {
  it('regression: a burst of documents past the process budget is refused before it is read, one tenant holds at most its share, another tenant’s command is served', async () => {
    const [a, b, c] = tenants as [(typeof tenants)[0], (typeof tenants)[0], (typeof tenants)[0]];
    const uploadOfA = heldPlan(a);
    let uploadOfB: ReturnType<typeof heldPlan> | undefined;
    try {
      await documentBytesHeld(HELD_DOCUMENT_BYTES);
      // A's upload holds its tenant's share: A's next document waits for it.
      expect(refusedBy(await plan(a))).toBe('tenant_document_bytes_in_flight');
      // Whatever the spelling of its id: the same tenant, the same share.
      expect(refusedBy(await plan({ ...a, id: a.id.toUpperCase() }))).toBe('tenant_document_bytes_in_flight');

      uploadOfB = heldPlan(b);
      await documentBytesHeld(DOCUMENT_BYTES_IN_FLIGHT);
      // A's and B's uploads hold the whole budget: any tenant's document is refused, unread.
      expect(refusedBy(await plan(c))).toBe('document_bytes_in_flight');
      expect(await cp.metrics.metrics()).toMatch(
        /vantageedge_control_plane_admin_rate_limited_total\{limit="document_bytes_in_flight",service="control-plane"\} [1-9]/,
      );

      // Meanwhile C's small command is served.
      const renamed = await cp.request('PATCH', `/api/v1/tenants/${c.id}`, {
        body: { name: 'docs-c-renamed' },
      });
      expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
      c.name = 'docs-c-renamed';

      // Answered documents give their bytes back.
      expect(await uploadOfA.finish()).toBe(200);
      expect(await uploadOfB.finish()).toBe(200);
      const planOfC = await plan(c);
      expect(planOfC.status, JSON.stringify(planOfC.body)).toBe(200);
      const planOfA = await plan(a);
      expect(planOfA.status, JSON.stringify(planOfA.body)).toBe(200);
    } finally {
      uploadOfA.abort();
      uploadOfB?.abort();
    }
  }, 90_000);
});
