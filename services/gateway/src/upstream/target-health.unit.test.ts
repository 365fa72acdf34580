import { healthCheck } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { type HealthSource, TargetHealth } from './target-health.js';

function setup(config: unknown) {
  let clock = 0;
  const changes: string[] = [];
  const health = new TargetHealth(
    healthCheck.parse(config),
    30_000,
    () => clock,
    (healthy: boolean, source: HealthSource) => changes.push(`${healthy ? 'up' : 'down'}:${source}`),
  );
  return {
    health,
    changes,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const thresholds = {
  active: { healthy_threshold: 2, unhealthy_threshold: 3 },
  passive: { unhealthy_threshold: 4 },
};

describe('target health', () => {
  it('starts healthy', () => {
    expect(setup(thresholds).health.healthy).toBe(true);
  });

  it('goes down after unhealthy_threshold failed probes in a row and up after healthy_threshold good ones', () => {
    const { health, changes } = setup(thresholds);
    health.recordProbe(false);
    health.recordProbe(false);
    health.recordProbe(true);
    health.recordProbe(false);
    health.recordProbe(false);
    expect(health.healthy).toBe(true);
    health.recordProbe(false);
    expect(health.healthy).toBe(false);
    health.recordProbe(true);
    expect(health.healthy).toBe(false);
    health.recordProbe(true);
    expect(health.healthy).toBe(true);
    expect(changes).toEqual(['down:active', 'up:active']);
  });

  it('ejects after consecutive traffic failures; with active checks only probes restore it', () => {
    const { health, changes, advance } = setup(thresholds);
    for (let i = 0; i < 3; i++) health.recordTraffic(false);
    health.recordTraffic(true);
    for (let i = 0; i < 3; i++) health.recordTraffic(false);
    expect(health.healthy).toBe(true);
    health.recordTraffic(false);
    expect(health.healthy).toBe(false);
    advance(3_600_000);
    expect(health.healthy).toBe(false);
    health.recordProbe(true);
    health.recordProbe(true);
    expect(health.healthy).toBe(true);
    expect(changes).toEqual(['down:passive', 'up:active']);
  });

  it('probe successes before a passive ejection do not count toward recovery', () => {
    const { health } = setup(thresholds);
    health.recordProbe(true);
    for (let i = 0; i < 4; i++) health.recordTraffic(false);
    health.recordProbe(true);
    expect(health.healthy).toBe(false);
  });

  it('without active checks, re-admits a passively ejected target after the ejection time', () => {
    const { health, changes, advance } = setup({ ...thresholds, active: { enabled: false } });
    for (let i = 0; i < 4; i++) health.recordTraffic(false);
    expect(health.healthy).toBe(false);
    advance(29_999);
    expect(health.healthy).toBe(false);
    advance(1);
    expect(health.healthy).toBe(true);
    expect(changes).toEqual(['down:passive', 'up:passive']);
  });

  it('ignores traffic when passive checks are disabled', () => {
    const { health } = setup({ ...thresholds, passive: { enabled: false } });
    for (let i = 0; i < 50; i++) health.recordTraffic(false);
    expect(health.healthy).toBe(true);
  });

  describe('taking over the ejection of the set it replaces', () => {
    const passiveOnly = { active: { enabled: false }, passive: { unhealthy_threshold: 1 } };

    it('stays out until the ejection that began there is over', () => {
      const before = setup(passiveOnly);
      before.health.recordTraffic(false);
      before.advance(20_000);
      // Both sets read one clock in the replica; this one's starts where the old one's is.
      const after = setup(passiveOnly);
      after.advance(20_000);
      expect(after.health.inheritEjection(before.health)).toBe(true);
      expect(after.health.healthy).toBe(false);
      after.advance(10_000);
      expect(after.health.healthy).toBe(true);
    });

    it('keeps its own verdict once its probes have moved the target', () => {
      const before = setup(thresholds);
      for (let i = 0; i < 3; i++) before.health.recordProbe(false);
      const after = setup(thresholds);
      for (let i = 0; i < 3; i++) after.health.recordProbe(false);
      for (let i = 0; i < 2; i++) after.health.recordProbe(true);
      expect(after.health.inheritEjection(before.health)).toBe(false);
      expect(after.health.healthy).toBe(true);
    });
  });
});
