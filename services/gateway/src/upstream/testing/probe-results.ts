import type { Socket } from 'node:net';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { expect, vi } from 'vitest';
import { startRawOrigin } from '../../testing/raw-origins.js';
import { startActiveHealthChecks } from '../active-health-checks.js';
import { loopbackOriginsAllowed } from './test-origin.js';

/**
 * The first `count` results of the active health checks of an origin whose one target is a raw origin
 * (testing/raw-origins.ts) whose connections `onConnection` serves: its /health is probed every second,
 * each probe given `timeoutSeconds` (by default 10: the targets of most tests answer or reset at once, and
 * the timeout only leaves a busy machine time to answer). The checks and the target are stopped before
 * it returns.
 */
export async function firstProbeResults(
  onConnection: (socket: Socket) => void,
  count: number,
  timeoutSeconds = 10,
): Promise<boolean[]> {
  const target = await startRawOrigin(onConnection);
  const results: boolean[] = [];
  const active = originConfig.parse({
    id: '00000000-0000-4000-8000-000000000001',
    name: 'probed',
    targets: [{ url: target.url }],
    health_check: { active: { interval_seconds: 1, timeout_seconds: timeoutSeconds } },
  }).health_check.active;
  const checks = startActiveHealthChecks(
    [{ probeUrl: `${target.url}/health`, onProbe: (success) => results.push(success) }],
    active,
    loopbackOriginsAllowed(),
  );
  try {
    await vi.waitFor(() => expect(results.length).toBeGreaterThanOrEqual(count), { timeout: 10_000 });
  } finally {
    await checks.stop();
    await target.close();
  }
  return results.slice(0, count);
}
