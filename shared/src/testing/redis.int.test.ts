import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedis } from './redis.js';

describe('test harness: Redis', () => {
  const redis = createTestRedis('harness');
  const neighbour = createTestRedis('harness');

  afterAll(async () => {
    await neighbour.cleanup();
  });

  it('writes and reads back under a prefix of its own', async () => {
    expect(redis.prefix).not.toBe(neighbour.prefix);
    await redis.client.set(redis.key('greeting'), 'hello');
    await redis.client.hset(redis.key('bucket'), { tokens: '5', updated_at: '1700000000000' });
    expect(await redis.client.get(redis.key('greeting'))).toBe('hello');
    expect(await redis.client.hgetall(redis.key('bucket'))).toEqual({
      tokens: '5',
      updated_at: '1700000000000',
    });
    expect(await neighbour.client.get(neighbour.key('greeting'))).toBeNull();
  });

  it('cleanup deletes only its own keys', async () => {
    await neighbour.client.set(neighbour.key('kept'), 'yes');
    const greeting = redis.key('greeting');
    await redis.cleanup();
    expect(await neighbour.client.exists(greeting)).toBe(0);
    expect(await neighbour.client.get(neighbour.key('kept'))).toBe('yes');
  });
});
