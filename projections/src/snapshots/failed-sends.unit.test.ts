import { describe, expect, it } from 'vitest';
import { FailedSends } from './failed-sends.js';

function failedSends() {
  let now = 0;
  const sends = new FailedSends(100, 1_000, () => now);
  return { sends, advance: (ms: number) => (now += ms) };
}

describe('FailedSends', () => {
  it('holds nothing back while no send failed', () => {
    const { sends } = failedSends();
    expect(sends.hold('a')).toBe(0);
    expect(sends.batchLimit('a', 200)).toBe(200);
    expect(sends.waitingCount()).toBe(0);
  });

  it('holds back the tenants of a failed send, each for longer at each failure, up to the most', () => {
    const { sends, advance } = failedSends();
    const waits: number[] = [];
    for (let failure = 0; failure < 6; failure++) {
      sends.failed(['a']);
      waits.push(sends.hold('a'));
      advance(sends.hold('a'));
    }
    expect(waits).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(sends.hold('b')).toBe(0);
  });

  it('sends a tenant of failed sends in ever smaller batches, down to alone', () => {
    const { sends } = failedSends();
    const limits: number[] = [];
    for (let failure = 0; failure < 9; failure++) {
      sends.failed(['a']);
      limits.push(sends.batchLimit('a', 200));
    }
    expect(limits).toEqual([100, 50, 25, 12, 6, 3, 1, 1, 1]);
  });

  it('forgets a tenant once its version is sent', () => {
    const { sends } = failedSends();
    sends.failed(['a', 'b']);
    expect(sends.waitingCount()).toBe(2);
    sends.forget('a');
    expect(sends.hold('a')).toBe(0);
    expect(sends.batchLimit('a', 200)).toBe(200);
    expect(sends.waitingCount()).toBe(1);
  });

  it('keeps backing off a tenant that fails alone while the sends of others succeed', () => {
    const { sends } = failedSends();
    for (let failure = 0; failure < 8; failure++) {
      sends.failed(['stuck']);
      sends.succeeded(['other']);
    }
    expect(sends.batchLimit('stuck', 200)).toBe(1);
    expect(sends.hold('stuck')).toBe(1_000);
  });

  it('forgives every tenant of the failed sends once one succeeds after tenants each sent alone failed', () => {
    // The whole bus was down: the tenants were not the cause, and go in full batches at once.
    const { sends } = failedSends();
    for (let failure = 0; failure < 8; failure++) sends.failed(['a', 'b', 'c']);
    sends.failed(['a']);
    sends.failed(['b']);
    sends.succeeded(['a']);
    expect(sends.batchLimit('c', 200)).toBe(200);
    expect(sends.hold('c')).toBe(0);
    expect(sends.waitingCount()).toBe(0);
  });
});
