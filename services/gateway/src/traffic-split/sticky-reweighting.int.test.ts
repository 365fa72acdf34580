import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Sticky clients when a split's weights or members change: only the clients that must move do. Each
 * route below is one edit of the same split (the sticky choice depends on the value and the origins,
 * not on the route), so a session's origin on two routes is its origin before and after that edit.
 * Regression: the value's hash was taken modulo the weights' total and laid over the origins in list
 * order, so raising the canary from 5 to 10 (the total changing), adding an origin or removing one
 * moved clients between origins the edit did not touch, and reordering the list moved about 10%.
 */
describe('sticky traffic split under weight and member changes', () => {
  let gateway: TestGateway;
  let stable: TestOrigin;
  let canary: TestOrigin;
  let blue: TestOrigin;
  const host = 'reweigh.localhost';
  const sessions = Array.from({ length: 300 }, (_, i) => `session-${i}`);

  beforeAll(async () => {
    stable = await startTestOrigin('stable');
    canary = await startTestOrigin('canary');
    blue = await startTestOrigin('blue');
    gateway = await startTestGateway();
    const ids = { stable: randomUUID(), canary: randomUUID(), blue: randomUUID() };
    const route = (path: string, weights: [keyof typeof ids, number][]) => ({
      origin_id: ids.stable,
      path_pattern: `/${path}/*`,
      traffic_split: {
        origins: weights.map(([name, weight]) => ({ origin_id: ids[name], weight })),
        sticky: { cookie: 'session' },
      },
    });
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'reweigh',
        origins: [
          { id: ids.stable, targets: [stable.url] },
          { id: ids.canary, targets: [canary.url] },
          { id: ids.blue, targets: [blue.url] },
        ],
        routes: [
          route('canary-5', [
            ['stable', 95],
            ['canary', 5],
          ]),
          route('canary-10', [
            ['stable', 90],
            ['canary', 10],
          ]),
          route('canary-5-of-105', [
            ['stable', 95],
            ['canary', 10],
          ]),
          route('reordered', [
            ['canary', 5],
            ['stable', 95],
          ]),
          route('blue-added', [
            ['stable', 95],
            ['canary', 5],
            ['blue', 5],
          ]),
          route('three', [
            ['stable', 50],
            ['canary', 25],
            ['blue', 25],
          ]),
          route('canary-removed', [
            ['stable', 50],
            ['canary', 0],
            ['blue', 25],
          ]),
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await stable?.close();
    await canary?.close();
    await blue?.close();
  });

  async function originsOn(path: string): Promise<string[]> {
    const origins: string[] = [];
    for (const session of sessions) {
      const answer = await send(gateway, host, `/${path}/page`, {
        headers: { cookie: `session=${session}` },
      });
      origins.push(String(answer.json()['origin']));
    }
    return origins;
  }

  /** "from → to" for every session whose origin differs between the two routes, counted. */
  async function moves(before: string, after: string): Promise<Record<string, number>> {
    const [was, now] = [await originsOn(before), await originsOn(after)];
    const counted: Record<string, number> = {};
    sessions.forEach((_, i) => {
      if (was[i] !== now[i]) counted[`${was[i]} → ${now[i]}`] = (counted[`${was[i]} → ${now[i]}`] ?? 0) + 1;
    });
    return counted;
  }

  it('moves sessions only onto the canary when its weight grows, whatever the total', async () => {
    for (const grown of ['canary-10', 'canary-5-of-105']) {
      const moved = await moves('canary-5', grown);
      expect(Object.keys(moved)).toEqual(['stable → canary']);
    }
  });

  it('keeps every session where it was when the split lists its origins in another order', async () => {
    expect(await moves('canary-5', 'reordered')).toEqual({});
  });

  it('moves sessions only onto an origin added to the split', async () => {
    const moved = Object.keys(await moves('canary-5', 'blue-added'));
    expect(moved).toContain('stable → blue');
    expect(moved.filter((move) => !move.endsWith('→ blue'))).toEqual([]);
  });

  it('moves only the sessions of an origin taken out of the split, over the others', async () => {
    const moved = Object.keys(await moves('three', 'canary-removed'));
    expect(moved).toContain('canary → stable');
    expect(moved.filter((move) => !move.startsWith('canary →'))).toEqual([]);
  });
});
