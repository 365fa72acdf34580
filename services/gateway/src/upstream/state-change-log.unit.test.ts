import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createStateChangeLog,
  STATE_CHANGE_LINES_PER_TENANT_WINDOW,
  STATE_CHANGE_LINES_PER_WINDOW,
  STATE_CHANGE_WINDOW_MS,
  stateChangeLineBudget,
} from './state-change-log.js';

function recorder() {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }> = [];
  const logger = {
    info: (message: string, fields?: Record<string, unknown>) =>
      lines.push({ level: 'info', message, fields }),
    warn: (message: string, fields?: Record<string, unknown>) =>
      lines.push({ level: 'warn', message, fields }),
    error: (message: string, fields?: Record<string, unknown>) =>
      lines.push({ level: 'error', message, fields }),
  };
  return { logger, lines };
}

describe('upstream state-change log', () => {
  it('writes at most its lines per window and says in the next window’s first line how many it left out', () => {
    const { logger, lines } = recorder();
    let clock = 1_000;
    const log = createStateChangeLog(logger, () => clock);

    for (let i = 0; i < STATE_CHANGE_LINES_PER_WINDOW + 7; i++) {
      log(i % 2 === 0 ? 'warn' : 'info', `change ${i}`, { target: 't' });
    }
    expect(lines).toHaveLength(STATE_CHANGE_LINES_PER_WINDOW);
    expect(lines.every((line) => line.fields?.['unlogged_changes'] === undefined)).toBe(true);
    expect(lines[0]).toEqual({ level: 'warn', message: 'change 0', fields: { target: 't' } });

    clock += STATE_CHANGE_WINDOW_MS;
    log('info', 'upstream target healthy', { target: 't' });
    log('warn', 'upstream target ejected', { target: 't' });
    expect(lines.slice(STATE_CHANGE_LINES_PER_WINDOW)).toEqual([
      { level: 'info', message: 'upstream target healthy', fields: { target: 't', unlogged_changes: 7 } },
      { level: 'warn', message: 'upstream target ejected', fields: { target: 't' } },
    ]);
  });
});

/**
 * Each origin writes at most its bound of state-change lines per window, and all of a tenant's origins
 * together at most the tenant's share; what the share left out is one summary line at the window's
 * end. Another tenant's lines are never left out for it.
 */
describe('state-change lines of a tenant’s origins', () => {
  let lines: Array<{ message: string; fields: Record<string, unknown> | undefined }>;
  const logger = {
    info: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields }),
    warn: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields }),
    error: () => {},
  };
  const linesOf = (tenantId: string) => lines.filter((line) => line.fields?.['tenant_id'] === tenantId);

  beforeEach(() => {
    lines = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  /** One log per origin of the tenant, as each upstream set makes its own. */
  function originsOf(tenantId: string, count: number, budget = stateChangeLineBudget(logger)) {
    return Array.from({ length: count }, () =>
      createStateChangeLog(logger, () => Date.now(), { tenantId, budget }),
    ).map(
      (log, i) => () => log('warn', 'upstream target ejected', { tenant_id: tenantId, origin_id: `o${i}` }),
    );
  }

  it('writes the tenant’s share for 100 flapping origins, then one summary of the rest at the window’s end', () => {
    const budget = stateChangeLineBudget(logger);
    const flapping = originsOf('tenant-a', 100, budget);
    const [other] = originsOf('tenant-b', 1, budget);

    for (const change of flapping) change();
    for (const change of flapping) change();
    other!();

    expect(linesOf('tenant-a')).toHaveLength(STATE_CHANGE_LINES_PER_TENANT_WINDOW);
    expect(linesOf('tenant-b').map((line) => line.message)).toEqual(['upstream target ejected']);

    vi.advanceTimersByTime(STATE_CHANGE_WINDOW_MS);
    const suppressed = 200 - STATE_CHANGE_LINES_PER_TENANT_WINDOW;
    expect(linesOf('tenant-a').at(-1)).toEqual({
      message: `${suppressed} more state changes for tenant tenant-a suppressed`,
      fields: { tenant_id: 'tenant-a', suppressed_changes: suppressed, window_ms: STATE_CHANGE_WINDOW_MS },
    });
    // Nothing of tenant B's was left out: no summary.
    expect(linesOf('tenant-b')).toHaveLength(1);

    // The next window has the tenant's share again.
    flapping[0]!();
    expect(linesOf('tenant-a')).toHaveLength(STATE_CHANGE_LINES_PER_TENANT_WINDOW + 2);
  });

  it('still bounds one origin by its own bound within the tenant’s share', () => {
    const [origin] = originsOf('tenant-a', 1);
    for (let i = 0; i < STATE_CHANGE_LINES_PER_WINDOW * 3; i++) origin!();
    expect(linesOf('tenant-a')).toHaveLength(STATE_CHANGE_LINES_PER_WINDOW);
  });
});
