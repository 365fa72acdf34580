import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { runWithRequestContext } from './request-context.js';

function capture(level?: string) {
  const stream = new PassThrough();
  const logger = createLogger({ service: 'gateway', stream, ...(level ? { level } : {}) });
  const lines = (): Array<Record<string, unknown>> =>
    String(stream.read() ?? '')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines };
}

describe('createLogger', () => {
  it('writes one JSON object per line with timestamp, level, service, message and fields', () => {
    const { logger, lines } = capture();
    logger.info('route matched', { route_id: 'r-1' });
    const [line] = lines();
    expect(line).toMatchObject({
      level: 'info',
      service: 'gateway',
      message: 'route matched',
      route_id: 'r-1',
    });
    expect(Number.isNaN(Date.parse(String(line?.['timestamp'])))).toBe(false);
  });

  it('writes DEL and the C1 controls of a field as escapes, so a terminal showing the line acts on none', () => {
    const stream = new PassThrough();
    const logger = createLogger({ service: 'gateway', stream });
    const sent = '/a\x9b2J\x9d52;c;eA==\x9c\x7f';
    logger.warn('origin refused', { path: sent });
    const line = String(stream.read() ?? '').trim();
    expect(line).not.toMatch(/[\u007f-\u009f]/);
    expect(line).toContain('\\u009b2J\\u009d52');
    expect((JSON.parse(line) as Record<string, unknown>)['path']).toBe(sent);
  });

  it('adds request_id, trace_id and tenant_id to every line written inside a request context', async () => {
    const { logger, lines } = capture();
    await runWithRequestContext({ requestId: 'req-42', traceId: 'trace-abc', tenantId: 'acme' }, async () => {
      logger.info('before await');
      await new Promise((resolve) => setImmediate(resolve));
      logger.warn('after await');
    });
    logger.info('outside');
    const [before, after, outside] = lines();
    for (const line of [before, after]) {
      expect(line).toMatchObject({ request_id: 'req-42', trace_id: 'trace-abc', tenant_id: 'acme' });
    }
    expect(outside).not.toHaveProperty('request_id');
    expect(outside).not.toHaveProperty('trace_id');
  });

  it('keeps an id the caller set explicitly', () => {
    const { logger, lines } = capture();
    runWithRequestContext({ requestId: 'req-1' }, () =>
      logger.info('forwarded', { request_id: 'upstream-7' }),
    );
    expect(lines()[0]?.['request_id']).toBe('upstream-7');
  });

  it('drops lines below the configured level', () => {
    const { logger, lines } = capture('warn');
    logger.info('too chatty');
    logger.debug('way too chatty');
    logger.error('kept');
    expect(lines().map((line) => line['message'])).toEqual(['kept']);
  });

  it('drops lines instead of holding them in memory while the destination is not reading, then says how many', () => {
    const pending: Array<() => void> = [];
    const written: string[] = [];
    // A log shipper that stopped reading: nothing written is ever acknowledged until it resumes.
    const stalled = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk.toString());
        pending.push(done);
      },
    });
    const logger = createLogger({ service: 'control-plane', stream: stalled, maxBufferedBytes: 64 * 1024 });
    const path = `/${'a'.repeat(1000)}`;
    for (let i = 0; i < 5000; i++) logger.info('request', { path });
    expect(stalled.writableLength).toBeLessThanOrEqual(64 * 1024);

    const drain = () => {
      while (pending.length > 0) pending.shift()?.();
    };
    drain();
    logger.info('after the backlog');
    drain();
    const lines = written
      .join('')
      .split('\n')
      .filter((line) => line !== '');
    const notice = JSON.parse(lines.at(-2) ?? '{}') as Record<string, unknown>;
    expect(notice).toMatchObject({ level: 'warn', service: 'control-plane', message: 'log lines dropped' });
    expect(lines.length - 2 + Number(notice['dropped'])).toBe(5000);
    expect(JSON.parse(lines.at(-1) ?? '{}')).toMatchObject({ message: 'after the backlog' });
  });
});
