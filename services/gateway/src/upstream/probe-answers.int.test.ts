import net from 'node:net';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { onRequestHeads } from '../testing/request-heads.js';
import { startActiveHealthChecks } from './active-health-checks.js';
import { loopbackOriginsAllowed } from './testing/test-origin.js';
import { MAX_ANSWER_HEADER_LINES, MAX_INTERIM_ANSWERS } from './unasked-continue.js';

/**
 * A health probe reads an origin's answer as a proxied request does. Regression tests: a target whose
 * answers start with a `100 Continue` it sends unasked (which the proxy ignores, its requests answered)
 * failed every probe, undici closing the connection on any 100, and was marked down; a target flooding
 * its answer with interim answers, or a head with thousands of header lines (every proxied request to
 * it answered 502), passed its probes, each read at the origin's pace for as long as it went on.
 */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

async function originAnswering(answer: string): Promise<string> {
  const server = net.createServer((socket) => onRequestHeads(socket, () => socket.write(answer)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on('connection', (socket) => cleanups.push(async () => void socket.destroy()));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function probeResults(answer: string): Promise<boolean[]> {
  const url = await originAnswering(answer);
  const results: boolean[] = [];
  const active = originConfig.parse({
    id: '00000000-0000-4000-8000-000000000001',
    name: 'probed',
    targets: [{ url }],
    health_check: { active: { interval_seconds: 1, timeout_seconds: 10 } },
  }).health_check.active;
  const checks = startActiveHealthChecks(
    [{ probeUrl: `${url}/health`, onProbe: (success) => results.push(success) }],
    active,
    loopbackOriginsAllowed(),
  );
  cleanups.push(() => checks.stop());
  await vi.waitFor(() => expect(results.length).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
  return results.slice(0, 2);
}

const head = (status: string, lines: number) => `HTTP/1.1 ${status}\r\n${'x: v\r\n'.repeat(lines)}\r\n`;

describe('a health probe of an origin', () => {
  it('that sends 100 Continue unasked before its answer: passes, as its proxied requests are answered', async () => {
    expect(await probeResults(`HTTP/1.1 100 Continue\r\n\r\n${OK}`)).toEqual([true, true]);
  });

  it.each([
    [
      'more than MAX_INTERIM_ANSWERS interim answers',
      head('103 Early Hints', 1).repeat(MAX_INTERIM_ANSWERS + 1),
    ],
    [
      'an interim answer of more than MAX_ANSWER_HEADER_LINES header lines',
      head('103 Early Hints', MAX_ANSWER_HEADER_LINES + 1),
    ],
  ])(
    'that sends %s before its answer: fails, as its proxied requests are answered 502',
    async (_case, before) => {
      expect(await probeResults(`${before}${OK}`)).toEqual([false, false]);
    },
  );

  it('whose answer head has more than MAX_ANSWER_HEADER_LINES header lines: fails', async () => {
    const answer = `${head('200 OK', MAX_ANSWER_HEADER_LINES).replace(/\r\n$/, '')}Content-Length: 2\r\n\r\nok`;
    expect(await probeResults(answer)).toEqual([false, false]);
    const atBound = `${head('200 OK', MAX_ANSWER_HEADER_LINES - 1).replace(/\r\n$/, '')}Content-Length: 2\r\n\r\nok`;
    expect(await probeResults(atBound)).toEqual([true, true]);
  });
});
