import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import {
  type StalledConnectTarget,
  startStalledConnectTarget,
} from '@vantageedge/shared/testing/stalled-connect-target';
import type { buildConnector } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGuardedConnector } from './guarded-connector.js';

/** Connect timeouts against a target whose TCP connects never complete (its SYNs are dropped). */

let target: StalledConnectTarget;

beforeAll(async () => {
  target = await startStalledConnectTarget();
});

afterAll(async () => {
  await target?.close();
});

afterEach(() => {
  vi.useRealTimers();
});

const turnsOfTheEventLoop = async (count: number) => {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

function connect(
  connector: buildConnector.connector,
  url: string,
): { settled: () => Error | null | undefined } {
  const { hostname, port } = new URL(url);
  let outcome: Error | null | undefined;
  connector(
    { hostname, host: hostname, protocol: 'http:', port } as buildConnector.Options,
    (error, socket) => {
      socket?.destroy();
      outcome = error;
    },
  );
  return { settled: () => outcome };
}

describe('the guarded connector’s connect timeout', () => {
  it('fails a connect that does not complete right after its timeout, even under a second (regression: undici’s half-second timer wheel answered a 100 ms connect timeout after about 1 s)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const policy = new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK);
    const attempt = connect(createGuardedConnector(policy, { timeout: 100 }), target.url);

    await vi.advanceTimersByTimeAsync(60);
    await turnsOfTheEventLoop(5);
    expect(attempt.settled(), 'not before the timeout').toBeUndefined();

    await vi.advanceTimersByTimeAsync(60);
    await turnsOfTheEventLoop(5);
    const error = attempt.settled();
    expect(error).toBeInstanceOf(Error);
    expect((error as Error & { code?: string }).code).toBe('UND_ERR_CONNECT_TIMEOUT');
  });

  it('times out a host name’s connect the same way (the lookup happens inside the connect)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const policy = new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK);
    const byName = target.url.replace('127.0.0.1', 'localhost');
    const attempt = connect(createGuardedConnector(policy, { timeout: 100 }), byName);
    await vi.advanceTimersByTimeAsync(120);
    await turnsOfTheEventLoop(5);
    expect((attempt.settled() as (Error & { code?: string }) | undefined)?.code).toBe(
      'UND_ERR_CONNECT_TIMEOUT',
    );
  });
});
