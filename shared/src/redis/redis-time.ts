import type { RedisClient } from './client.js';

/** Redis's clock (TIME), in ms since the epoch: the clock quota periods, usage hours and batch ids follow. */
export async function redisTimeMs(redis: RedisClient): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
