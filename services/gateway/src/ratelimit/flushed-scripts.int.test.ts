import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { startTcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { type Command, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LimitRequest } from './limit-store.js';
import { RedisLimitStore } from './redis-limit-store.js';

/**
 * Redis forgets its scripts (SCRIPT FLUSH, a restart): the next charge's EVALSHA is refused with
 * NOSCRIPT and ioredis sends it again as EVAL. Each request is still decided by Redis and charged once,
 * and a charge whose EVAL is answered after its caller stopped waiting is given back, as any late one.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
describe.each([true, false])(
  'charges after the script cache was flushed (auto-pipelining: %s)',
  (autoPipelining) => {
    let server: PrivateRedisServer;
    let redis: RedisClient;
    let admin: Redis;

    beforeAll(async () => {
      server = await startPrivateRedisServer();
      redis = createRedisClient({
        url: server.url,
        commandTimeoutMs: 1_000,
        autoPipelining,
        name: 'flushed-scripts',
      });
      admin = new Redis(server.url);
      await whenReady(redis);
    });

    afterAll(async () => {
      redis?.disconnect();
      admin?.disconnect();
      await server?.stop();
    });

    const charge = (key: string): LimitRequest => ({
      key: `${key}:{tenant}`,
      spec: { algorithm: 'token_bucket', capacity: 100, ratePerMs: 0.000_001, windowMs: 0, ttlMs: 60_000 },
      cost: 1,
      minCost: 1,
    });

    it('decides every concurrent call by Redis and charges each once', async () => {
      const store = new RedisLimitStore(redis);
      const request = charge('flushed');
      expect((await store.consume([request]))[0]!.granted).toBe(1);
      await admin.script('FLUSH');
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => store.consume([request])));
      expect(outcomes.map((o) => o[0]!.granted)).toEqual(Array(10).fill(1));
      expect(Math.min(...outcomes.map((o) => o[0]!.remaining))).toBe(100 - 11);
      const [tokens] = await admin.hmget(request.key, 't');
      expect(Math.floor(Number(tokens))).toBe(100 - 11);
    });

    it('gives back a charge sent again after NOSCRIPT whose answer came after the command timeout', async () => {
      const commandTimeoutMs = 100;
      const answerDelayMs = 4 * commandTimeoutMs;
      const proxy = await startTcpProxy(server.url);
      const slow = createRedisClient({
        url: proxy.urlFor(server.url),
        commandTimeoutMs,
        connectTimeoutMs: 4_000,
        autoPipelining,
        name: 'flushed-scripts-late',
      });
      try {
        await whenReady(slow);
        const store = new RedisLimitStore(slow);
        const request = charge(`late-after-noscript-${autoPipelining}`);
        expect((await store.consume([request]))[0]!.granted).toBe(1);
        await admin.script('FLUSH');
        // NOSCRIPT comes at once; the answer of the call sent again after it comes late.
        let scriptCalls = 0;
        const send = slow.sendCommand.bind(slow) as (command: Command, ...rest: unknown[]) => unknown;
        Reflect.set(slow, 'sendCommand', (command: Command, ...rest: unknown[]) => {
          if (command.name === 'evalsha' && ++scriptCalls === 2) proxy.delayAnswers(answerDelayMs);
          return send(command, ...rest);
        });
        const lateOutcomes: number[] = [];
        const onLate = (outcomes: readonly { granted: number }[]) => {
          lateOutcomes.push(...outcomes.map((outcome) => outcome.granted));
          return outcomes.map((outcome) => outcome.granted);
        };
        await expect(store.consume([request], onLate)).rejects.toThrow(/timed out/i);
        expect(scriptCalls).toBe(2);

        proxy.delayAnswers(0);
        await sleep(answerDelayMs + 200);
        let tokens = 0;
        for (let attempt = 0; attempt < 20; attempt++) {
          tokens = Math.floor(Number((await admin.hmget(request.key, 't'))[0]));
          if (tokens === 100 - 1) break;
          await sleep(50);
        }
        expect(lateOutcomes).toEqual([1]);
        expect(tokens).toBe(100 - 1);
      } finally {
        slow.disconnect();
        await proxy.close();
      }
    });
  },
);
