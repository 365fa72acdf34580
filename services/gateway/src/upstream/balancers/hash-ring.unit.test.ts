import { describe, expect, it } from 'vitest';
import { hash32 } from '../hash.js';
import { HashRing, MAX_RING_POINTS, POINTS_PER_TARGET } from './hash-ring.js';

/** An unweighted target's points, as before; and a 100-target origin's (the most an origin has). */
const PER_TARGET = 160;
const PER_ORIGIN = 100 * PER_TARGET;

const members = (count: number, weight: (i: number) => number = () => 1) =>
  Array.from({ length: count }, (_, i) => ({
    id: `http://10.0.${i >> 8}.${i & 255}:8080`,
    weight: weight(i),
  }));

/**
 * Regression: an origin's ring had up to 40,000 points whatever its target count (weights multiplied
 * them), so 100 origins of heavy targets built 4 million points — ≈2.7 s of CPU in the Kafka batch
 * handler on every replica. Points now follow the targets: at most POINTS_PER_TARGET per target (weights
 * share them out) and at most MAX_RING_POINTS per origin, so a tenant's rings have at most
 * POINTS_PER_TARGET × its targets points (TENANT_MAX_TARGETS bounds those).
 */
describe('hash ring size', () => {
  it('gives weights a share of the targets’ points instead of multiplying them', () => {
    expect(new HashRing(members(10, () => 1000)).points.length).toBeLessThanOrEqual(10 * PER_TARGET);
    expect(new HashRing(members(2, () => 1000)).points.length).toBeLessThanOrEqual(2 * PER_TARGET);
    const skewed = new HashRing(members(100, (i) => (i === 0 ? 1000 : 1)));
    expect(skewed.points.length).toBeLessThanOrEqual(100 * PER_TARGET);
    expect(POINTS_PER_TARGET).toBe(PER_TARGET);
  });

  it('never builds more than MAX_RING_POINTS points for one origin, whatever the weights', () => {
    for (const weight of [1, 7, 1000]) {
      const ring = new HashRing(members(100, () => weight));
      expect(ring.points.length, `weight ${weight}`).toBeLessThanOrEqual(PER_ORIGIN);
      expect(ring.owners.length).toBe(ring.points.length);
    }
    expect(MAX_RING_POINTS).toBe(PER_ORIGIN);
  });

  it('keeps every unweighted ring as it was (no key moves on upgrade): 160 points per target at hash("<id>#<n>")', () => {
    const ring = new HashRing(members(4));
    expect(ring.points.length).toBe(4 * 160);
    const expected = members(4)
      .flatMap((member) => Array.from({ length: 160 }, (_, n) => hash32(`${member.id}#${n}`)))
      .sort((a, b) => a - b);
    expect([...ring.points]).toEqual(expected);
    expect([...ring.points]).toEqual([...ring.points].sort((a, b) => a - b));
  });

  it('still gives every target at least one point and a heavier target proportionally more', () => {
    const ring = new HashRing(members(100, (i) => (i < 50 ? 1000 : 1)));
    const owned = new Map<number, number>();
    for (const owner of ring.owners) owned.set(owner, (owned.get(owner) ?? 0) + 1);
    expect(owned.size).toBe(100);
    expect(owned.get(0)!).toBeGreaterThan(100 * owned.get(99)!);
  });

  it('breaks position ties by member id, so the ring does not depend on target order', () => {
    const forward = new HashRing(members(50, (i) => 1 + (i % 3)));
    const reversed = new HashRing(members(50, (i) => 1 + (i % 3)).reverse());
    const ids = (ring: HashRing, list: ReturnType<typeof members>) =>
      [...ring.owners].map((o) => list[o]!.id);
    expect([...reversed.points]).toEqual([...forward.points]);
    expect(ids(reversed, members(50, (i) => 1 + (i % 3)).reverse())).toEqual(
      ids(
        forward,
        members(50, (i) => 1 + (i % 3)),
      ),
    );
  });
});

describe('hash ring of an origin with drained targets', () => {
  it('gives a weight-0 target no point and the others the points they would have without it', () => {
    const withDrained = members(5, (i) => (i === 3 ? 0 : 1));
    const ring = new HashRing(withDrained);
    expect([...ring.owners]).not.toContain(3);
    const without = withDrained.filter((_, i) => i !== 3);
    expect([...ring.points]).toEqual([...new HashRing(without).points]);
  });

  it('has no point at all when every target is drained', () => {
    expect(new HashRing(members(3, () => 0)).points.length).toBe(0);
  });
});
