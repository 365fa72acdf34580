import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import type { Command } from 'ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LimitOutcome, LimitRequest } from './limit-store.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * How RedisLimitStore hears the answer of a charge that came after the command timeout, on the paths
 * ioredis takes with such a command. A TCP proxy delays every answer of the shared Redis.
 */
const prefix = `test:rl-late-replies:${uniqueSuffix()}:`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const COMMAND_TIMEOUT_MS = 100;
const ANSWER_DELAY_MS = 4 * COMMAND_TIMEOUT_MS;

describe.each([true, false])('late charge answers (auto-pipelining: %s)', (autoPipelining) => {
  let proxy: TcpProxy;
  let redis: RedisClient;
  const sent: Command[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_INFRA.redisUrl);
    redis = createRedisClient({
      url: proxy.urlFor(TEST_INFRA.redisUrl),
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      autoPipelining,
      name: `late-replies-${autoPipelining}`,
    });
    await whenReady(redis);
    // Every command the client writes, as ioredis built it.
    const sendCommand = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: Command, stream?: unknown) => {
      sent.push(command);
      return (sendCommand as (command: Command, stream?: unknown) => unknown)(command, stream);
    }) as typeof redis.sendCommand;
  });

  afterAll(async () => {
    redis?.disconnect();
    await proxy?.close();
    const cleaner = new Redis(TEST_INFRA.redisUrl);
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
    cleaner.disconnect();
  });

  const charge = (name: string): LimitRequest => ({
    key: `${prefix}${autoPipelining}:${name}:{tenant}`,
    spec: { algorithm: 'token_bucket', capacity: 5, ratePerMs: 0.000_001, windowMs: 0, ttlMs: 60_000 },
    cost: 1,
    minCost: 1,
  });

  const waitFor = async (done: () => boolean) => {
    for (let attempt = 0; attempt < 100 && !done(); attempt++) await sleep(25);
  };

  it('hears the late answer of a charge ioredis re-initialized after it failed, as a Redis Cluster pipeline does', async () => {
    const store = new RedisLimitStore(redis);
    const heard: LimitOutcome[][] = [];
    proxy.delayAnswers(ANSWER_DELAY_MS);
    sent.length = 0;
    const call = store.consume([charge('reinitialized')], (outcomes) => {
      heard.push([...outcomes]);
      return [0];
    });
    await expect(call).rejects.toThrow('Command timed out');
    // A Cluster pipeline whose commands all failed alike re-initializes each one before passing the
    // failure on (ioredis Pipeline#fillResult, ready to send them again): its answer resolves afresh.
    for (const command of sent) (command as unknown as { initPromise(): void }).initPromise();
    proxy.delayAnswers(0);
    await waitFor(() => heard.length > 0);
    expect(heard).toEqual([[expect.objectContaining({ granted: 1 })]]);
  });

  it('tells nothing of a charge answered in time', async () => {
    const store = new RedisLimitStore(redis);
    proxy.delayAnswers(0);
    const heard: unknown[] = [];
    const outcomes = await store.consume([charge('in-time')], (late) => {
      heard.push(late);
      return [1];
    });
    expect(outcomes[0]?.granted).toBe(1);
    await sleep(50);
    expect(heard).toEqual([]);
  });
});
