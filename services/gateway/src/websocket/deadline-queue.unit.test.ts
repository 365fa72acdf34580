import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineQueue } from './deadline-queue.js';

describe('DeadlineQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands over each item once its time has come, earliest first', () => {
    const due: string[] = [];
    const queue = new DeadlineQueue<string>((item) => due.push(item));
    const now = Date.now();
    for (const [item, inMs] of [
      ['c', 300],
      ['a', 100],
      ['d', 400],
      ['b', 200],
    ] as const)
      queue.set(item, now + inMs);

    vi.advanceTimersByTime(250);
    expect(due).toEqual(['a', 'b']);
    vi.advanceTimersByTime(1_000);
    expect(due).toEqual(['a', 'b', 'c', 'd']);
    expect(queue.size).toBe(0);
  });

  it('forgets a deleted item and follows a moved one', () => {
    const due: string[] = [];
    const queue = new DeadlineQueue<string>((item) => due.push(item));
    const now = Date.now();
    queue.set('closed', now + 100);
    queue.set('extended', now + 200);
    queue.set('shortened', now + 5_000);
    queue.delete('closed');
    queue.set('extended', now + 10_000);
    queue.set('shortened', now + 300);

    vi.advanceTimersByTime(1_000);
    expect(due).toEqual(['shortened']);
    vi.advanceTimersByTime(10_000);
    expect(due).toEqual(['shortened', 'extended']);
  });

  it('hands over an item already due at once, and one past node’s longest timer only when due', () => {
    const due: string[] = [];
    const queue = new DeadlineQueue<string>((item) => due.push(item));
    const now = Date.now();
    const inThirtyDays = now + 30 * 86_400_000;
    queue.set('next year', inThirtyDays);
    queue.set('expired during the upgrade', now - 1);

    vi.advanceTimersByTime(0);
    expect(due).toEqual(['expired during the upgrade']);
    vi.advanceTimersByTime(29 * 86_400_000);
    expect(due).toEqual(['expired during the upgrade']);
    vi.advanceTimersByTime(86_400_000);
    expect(due).toEqual(['expired during the upgrade', 'next year']);
  });

  it('keeps the order of many items set, moved and deleted at random', () => {
    const due: number[] = [];
    const queue = new DeadlineQueue<number>((item) => due.push(item));
    const now = Date.now();
    const deadlines = new Map<number, number>();
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let item = 0; item < 2_000; item += 1) {
      const at = now + 1 + Math.floor(random() * 100_000);
      queue.set(item, at);
      deadlines.set(item, at);
    }
    for (let item = 0; item < 2_000; item += 3) {
      if (random() < 0.5) {
        queue.delete(item);
        deadlines.delete(item);
      } else {
        const at = now + 1 + Math.floor(random() * 100_000);
        queue.set(item, at);
        deadlines.set(item, at);
      }
    }

    vi.advanceTimersByTime(100_001);
    const expected = [...deadlines].sort((a, b) => a[1] - b[1]).map(([item]) => item);
    expect(due.map((item) => deadlines.get(item))).toEqual(expected.map((item) => deadlines.get(item)));
    expect(new Set(due)).toEqual(new Set(deadlines.keys()));
  });
});
