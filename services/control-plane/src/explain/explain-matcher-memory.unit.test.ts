import { randomUUID } from 'node:crypto';
import { type TenantSnapshot, tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { liveHeapBytes } from '@vantageedge/shared/testing/live-memory';
import { describe, expect, it } from 'vitest';
import { type ExplainContext, explainRequest } from './explain-request.js';
import { decodedSnapshotOf } from './explain-source.js';

/**
 * Explain keeps each version's decoded snapshot and the route matcher it builds for it, so that the
 * explains of one version share them. With the routes' compiled patterns they hold ≈ 25 times the
 * snapshot's JSON (1,000 patterns of 255 segments: 0.7 MB of JSON, ≈ 17 MB), and were kept as long as
 * the fold of their version stayed in the config cache (CONTROL_PLANE_CONFIG_CACHE_BYTES, which counts
 * only the folds' JSON): a tenant explaining its config at each cached version, or many tenants
 * explaining theirs, held 25 times that bound on top (30 versions: 509 MB).
 */

const TENANT = randomUUID();
const ROUTES = 1_000;
const VERSIONS = 30;
const MB = 1_000_000;

/** A pattern of 255 one-letter segments, each route's its own. */
function deepPattern(route: number): string {
  const segments = ['a'];
  for (let segment = 1; segment < 255; segment += 1) {
    segments.push(String.fromCharCode(97 + ((route * 7 + segment * segment) % 26)));
  }
  return `/${segments.join('/')}/r${route}`;
}

const routes = Array.from({ length: ROUTES }, (_, route) => ({
  id: randomUUID(),
  origin_id: null,
  path_pattern: deepPattern(route),
  auth_mode: 'public',
  fixed_response: { status: 200, body: 'ok' },
}));

/** Version `version` of one tenant's config as folded: a new snapshot object, as each fold of a version is. */
function version(version: number): TenantSnapshot {
  return tenantSnapshot.parse({
    schema_version: 1,
    tenant_id: TENANT,
    version: String(version),
    event_time: new Date(0).toISOString(),
    tenant: { id: TENANT, name: 'Deep', subdomain: 'deep', clerk_org_id: null, settings: {} },
    custom_domains: [],
    origins: [],
    routes,
    api_keys: [],
  });
}

function explain(snapshot: TenantSnapshot) {
  const context: ExplainContext = {
    snapshot,
    formerKeys: () => Promise.resolve({ key: undefined }),
    apiKeyPepper: 'unit-pepper-0123456789abcdef0123456789abcdef',
    baseDomains: ['vantageedge.dev'],
    encodedSlashes: 'reject',
    maxServiceTokenSeconds: 300,
    now: new Date(0),
  };
  return explainRequest(
    snapshot,
    { method: 'GET', host: 'deep.vantageedge.dev', path: '/a/b', query: '', headers: {} },
    context,
  );
}

describe('explain: the route matchers it keeps', () => {
  it('hold a bounded amount of memory, however many versions still held elsewhere are explained', async () => {
    // Held here as the config cache holds its folds.
    const versions = Array.from({ length: VERSIONS }, (_, at) => version(at + 1));
    const before = liveHeapBytes();
    for (const folded of versions) {
      const answer = await explain(decodedSnapshotOf(folded));
      expect(answer.decision).toMatchObject({ code: 'route_not_found' });
    }
    const kept = liveHeapBytes() - before;
    // Unbounded, 30 versions kept 509 MB.
    expect(kept / MB).toBeLessThan(150);
    expect(versions.length).toBe(VERSIONS);
  }, 120_000);
});
