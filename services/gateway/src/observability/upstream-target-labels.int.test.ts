import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startFixedOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { TARGET_LABEL_MAX } from '../upstream/metrics.js';

/** The longest string a tenant admin may write by default (TENANT_MAX_STRING_LENGTH). */
const LONGEST_URL = 2048;

/**
 * Regression: the `target` label of the upstream series was the target's id, its URL origin (plus its
 * base path when the origin repeats), at any length the tenant wrote it. A tenant's 1,000 targets of
 * 2 KiB URLs put ~6 lines of 2 KiB each per target in every scrape of every replica (≈12 MiB), with no
 * traffic at all: ten times what the route label bound lets one tenant's routes take.
 */
describe('upstream target labels', () => {
  let origin: HttpOrigin;
  let originUrl: string;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const subdomain = `target-labels-${tenantId.slice(0, 8)}`;
  const servedOrigin = randomUUID();
  /** A base path of `length` characters ending in `last`: the targets' ids differ only at their end. */
  const pathOf = (last: string, length: number) => `/${'p'.repeat(length - 2)}${last}`;
  let longTargets: string[];

  beforeAll(async () => {
    origin = await startFixedOrigin();
    originUrl = origin.url;
    // One origin, three targets on the same URL origin: the second and third ids carry their base paths.
    longTargets = [
      originUrl,
      `${originUrl}${pathOf('a', LONGEST_URL - originUrl.length)}`,
      `${originUrl}${pathOf('b', LONGEST_URL - originUrl.length)}`,
    ];
    // A host name of 63-character labels: its URL origin alone is the target's id.
    const longHost = `${Array.from({ length: 30 }, () => 'h'.repeat(63)).join('.')}.example`;
    gateway = await startTestGateway();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain,
        origins: [
          { id: servedOrigin, targets: longTargets },
          { id: randomUUID(), targets: [`http://${longHost}`] },
        ],
        routes: [{ origin_id: servedOrigin, path_pattern: '/*' }],
      }),
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const tenantLines = async (): Promise<string[]> => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith('vantageedge_upstream_') && line.includes(`tenant="${tenantId}"`));
  };
  const targetOf = (line: string): string => /target="([^"]*)"/.exec(line)![1]!;

  it('bounds every target label, keeps the targets apart and counts their picks', async () => {
    const requests = 6;
    for (let i = 0; i < requests; i++) {
      expect((await send(gateway, `${subdomain}.localhost`, '/x')).status).toBe(200);
    }

    const lines = await tenantLines();
    const targetLines = lines.filter((line) => line.includes('target="'));
    expect(targetLines.length).toBeGreaterThan(0);
    for (const line of targetLines) {
      expect(targetOf(line).length, line.slice(0, 200)).toBeLessThanOrEqual(TARGET_LABEL_MAX);
    }

    const healthy = targetLines.filter((line) => line.startsWith('vantageedge_upstream_target_healthy{'));
    const labels = new Set(healthy.map(targetOf));
    expect(labels.size).toBe(longTargets.length + 1);
    // A short id is its own label; a cut one keeps the start of its id.
    expect(labels).toContain(originUrl);
    for (const label of labels) expect(label.startsWith('http://')).toBe(true);

    const picks = targetLines
      .filter((line) => line.startsWith('vantageedge_upstream_picks_total{'))
      .map((line) => Number(line.split(' ').pop()));
    expect(picks).toEqual(expect.arrayContaining([2, 2, 2]));
    expect(picks.reduce((sum, n) => sum + n, 0)).toBe(requests);

    // The access log names the target as /metrics does.
    await new Promise((resolve) => setImmediate(resolve));
    const logged = gateway.logLines
      .filter((line) => line['kind'] === 'access' && line['tenant_id'] === tenantId)
      .map((line) => line['upstream_target']);
    expect(logged).toHaveLength(requests);
    const servedLabels = healthy.filter((line) => line.includes(`origin="${servedOrigin}"`)).map(targetOf);
    expect(new Set(logged)).toEqual(new Set(servedLabels));
  });
});
