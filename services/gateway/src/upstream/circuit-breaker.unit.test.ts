import { circuitBreaker } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';

function setup(overrides: Partial<ReturnType<typeof circuitBreaker.parse>> = {}) {
  let clock = 1_000;
  const transitions: string[] = [];
  const settings = circuitBreaker.parse({
    consecutive_failures: 3,
    error_rate_threshold: 0.5,
    window_requests: 10,
    open_seconds: 5,
    half_open_requests: 2,
    ...overrides,
  });
  const breaker = new CircuitBreaker(
    settings,
    () => clock,
    (from: CircuitState, to: CircuitState, reason) => transitions.push(`${from}->${to}:${reason}`),
  );
  /** One request through the breaker, as the upstream set does it. */
  const request = (success: boolean) => {
    if (!breaker.admits()) return false;
    breaker.record(success, breaker.admit());
    return true;
  };
  return {
    breaker,
    transitions,
    request,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('circuit breaker', () => {
  it('opens after consecutive failures and refuses requests while open', () => {
    const { breaker, transitions, request } = setup();
    request(false);
    request(false);
    expect(breaker.state).toBe('closed');
    request(false);
    expect(breaker.state).toBe('open');
    expect(breaker.admits()).toBe(false);
    expect(transitions).toEqual(['closed->open:consecutive_failures']);
  });

  it('a success resets the consecutive count', () => {
    const { breaker, request } = setup();
    for (const success of [false, false, true, false, false, true]) request(success);
    expect(breaker.state).toBe('closed');
  });

  it('opens on the error rate over a full window, not before the window fills', () => {
    const { breaker, transitions, request } = setup({ consecutive_failures: 100 });
    // Alternating failures: never 3 in a row, 50 % of the window once it has 10 outcomes.
    for (let i = 0; i < 9; i++) request(i % 2 === 0);
    expect(breaker.state).toBe('closed');
    request(false);
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual(['closed->open:error_rate']);
  });

  it('forgets outcomes that slid out of the window', () => {
    const { breaker, request } = setup({ consecutive_failures: 100, error_rate_threshold: 0.6 });
    for (let i = 0; i < 5; i++) request(false); // 5 of the first 10 fail: 50 % < 60 %
    for (let i = 0; i < 5; i++) request(true);
    for (let i = 0; i < 10; i++) request(i % 2 === 0); // window now has 5 of 10 failed again
    expect(breaker.state).toBe('closed');
  });

  it('half-opens after the cool-down and admits only half_open_requests probes', () => {
    const { breaker, request, advance } = setup();
    for (let i = 0; i < 3; i++) request(false);
    advance(4_999);
    expect(breaker.admits()).toBe(false);
    advance(1);
    expect(breaker.admits()).toBe(true);
    expect(breaker.state).toBe('half_open');
    const first = breaker.admit();
    expect(breaker.admits()).toBe(true);
    const second = breaker.admit();
    expect(breaker.admits()).toBe(false);
    breaker.record(true, first);
    expect(breaker.state).toBe('half_open');
    breaker.record(true, second);
    expect(breaker.state).toBe('closed');
  });

  it('closes after successful probes with a clean window', () => {
    const { breaker, transitions, request, advance } = setup();
    for (let i = 0; i < 3; i++) request(false);
    advance(5_000);
    request(true);
    request(true);
    expect(breaker.state).toBe('closed');
    // The failures before the trip are forgotten: two more failures do not reopen it.
    request(false);
    request(false);
    expect(breaker.state).toBe('closed');
    expect(transitions).toEqual([
      'closed->open:consecutive_failures',
      'open->half_open:cool_down_over',
      'half_open->closed:probes_succeeded',
    ]);
  });

  it('reopens when a probe fails and waits a full cool-down again', () => {
    const { breaker, transitions, request, advance } = setup();
    for (let i = 0; i < 3; i++) request(false);
    advance(5_000);
    request(false);
    expect(breaker.state).toBe('open');
    advance(4_000);
    expect(breaker.admits()).toBe(false);
    advance(1_000);
    expect(breaker.admits()).toBe(true);
    expect(transitions.slice(1)).toEqual([
      'open->half_open:cool_down_over',
      'half_open->open:probe_failed',
      'open->half_open:cool_down_over',
    ]);
  });

  it('ignores outcomes of requests admitted before the circuit opened', () => {
    const { breaker, request, advance } = setup();
    const early = breaker.admit(); // in flight while the circuit trips
    for (let i = 0; i < 3; i++) request(false);
    advance(5_000);
    expect(breaker.admits()).toBe(true);
    breaker.record(false, early);
    expect(breaker.state).toBe('half_open');
  });

  it('ignores a late probe outcome from an earlier half-open round', () => {
    const { breaker, request, advance } = setup({ half_open_requests: 2 });
    for (let i = 0; i < 3; i++) request(false);
    advance(5_000);
    const slowProbe = breaker.admits() && breaker.admit();
    request(false); // the other probe fails: open again
    advance(5_000);
    expect(breaker.state).toBe('half_open');
    breaker.record(true, slowProbe || 0);
    request(true);
    expect(breaker.state).toBe('half_open'); // one probe of this round succeeded, the late one did not count
    request(true);
    expect(breaker.state).toBe('closed');
  });

  it('lets a probe whose client is still sending give its slot to another request meanwhile', () => {
    const { breaker, request, advance } = setup({ half_open_requests: 1 });
    for (let i = 0; i < 3; i++) request(false);
    advance(5_000);
    breaker.yieldProbeSlot(breaker.admit());
    expect(breaker.admits()).toBe(true);
    const other = breaker.admit();
    // Sent whole while the other request holds the only slot: its outcome is no probe's.
    const sent = breaker.readmit();
    breaker.record(false, sent);
    expect(breaker.state).toBe('half_open');
    breaker.record(true, other);
    expect(breaker.state).toBe('closed');
  });

  it('makes a request sent whole the probe when a slot is free, and keeps others out meanwhile', () => {
    const { breaker, request, advance } = setup({ half_open_requests: 1 });
    for (let i = 0; i < 3; i++) request(false);
    advance(5_000);
    breaker.yieldProbeSlot(breaker.admit());
    const probe = breaker.readmit();
    expect(breaker.admits()).toBe(false);
    breaker.record(false, probe);
    expect(breaker.state).toBe('open');
  });

  it('admits everything when disabled', () => {
    const { breaker, request } = setup({ enabled: false });
    for (let i = 0; i < 50; i++) request(false);
    expect(breaker.admits()).toBe(true);
    expect(breaker.state).toBe('closed');
  });
});

/**
 * Regression test: the window kept one byte per outcome, so a tenant at its limits (1,000 targets)
 * with window_requests 10,000 made every replica hold 10 MB of windows per version of its config,
 * more than twice what the rest of such a tenant costs (docs/capacity.md: 4.4 MB).
 */
describe('circuit breaker memory', () => {
  it('keeps a window of 10,000 outcomes in one bit each', () => {
    const settings = circuitBreaker.parse({ window_requests: 10_000 });
    const before = process.memoryUsage().arrayBuffers;
    const breakers = Array.from({ length: 1_000 }, () => new CircuitBreaker(settings, () => 0));
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(breakers).toHaveLength(1_000);
    expect(grown).toBeLessThan(1_500_000);
  });

  it('counts the error rate over a window that does not fill whole bytes', () => {
    const { breaker, request } = setup({ consecutive_failures: 1000, window_requests: 13 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 7; i++) request(true);
      for (let i = 0; i < 6; i++) request(i % 2 === 0);
    }
    expect(breaker.state).toBe('closed'); // 3 failures of 13
    for (let i = 0; i < 4; i++) request(false);
    expect(breaker.state).toBe('open'); // 7 failures of 13 ≥ 0.5
  });
});
