import { describe, expect, it } from 'vitest';
import { batches } from './batches.js';

async function* source(items: number[], pauseAfter: Set<number>) {
  for (const item of items) {
    yield item;
    if (pauseAfter.has(item)) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('batches', () => {
  it('takes what is already available, up to the maximum, and splits where the source waits', async () => {
    const result = await collect(batches(source([1, 2, 3, 4, 5, 6, 7], new Set([5])), 3));
    expect(result).toEqual([
      [1, 2, 3],
      [4, 5],
      [6, 7],
    ]);
  });

  it('ends with the source and loses nothing', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const result = await collect(batches(source(items, new Set()), 64));
    expect(result.flat()).toEqual(items);
    expect(Math.max(...result.map((b) => b.length))).toBe(64);
  });

  it('passes a failure of the source on', async () => {
    async function* failing() {
      yield 1;
      throw new Error('connection lost');
    }
    await expect(collect(batches(failing(), 10))).rejects.toThrow('connection lost');
  });
});
