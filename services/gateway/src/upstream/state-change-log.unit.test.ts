import { describe, expect, it } from 'vitest';
import {
  createStateChangeLog,
  STATE_CHANGE_LINES_PER_WINDOW,
  STATE_CHANGE_WINDOW_MS,
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
