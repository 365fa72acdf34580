import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LateSendGuard } from './late-send-guard.js';

describe('LateSendGuard', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function guard(delayMs: number) {
    const due: string[][] = [];
    const lateSends = new LateSendGuard(delayMs, (tenantIds) => due.push(tenantIds), Date.now);
    return { lateSends, due };
  }

  it('arms no timer while no send failed', () => {
    guard(10_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('hands the tenants of a failed send over once its window has passed, each once', () => {
    const { lateSends, due } = guard(10_000);
    lateSends.failed(['a', 'b']);
    vi.advanceTimersByTime(9_999);
    expect(due).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(due).toEqual([['a', 'b']]);
    expect(lateSends.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('counts a tenant’s window from its latest failed send, and keeps one entry per tenant', () => {
    const { lateSends, due } = guard(10_000);
    lateSends.failed(['a', 'b']);
    vi.advanceTimersByTime(4_000);
    lateSends.failed(['a', 'c']);
    expect(lateSends.size).toBe(3);
    vi.advanceTimersByTime(6_000);
    expect(due).toEqual([['b']]);
    vi.advanceTimersByTime(4_000);
    expect(due).toEqual([['b'], ['a', 'c']]);
    vi.advanceTimersByTime(60_000);
    expect(due).toHaveLength(2);
  });

  it('forgets everything and clears its timer when stopped', () => {
    const { lateSends, due } = guard(10_000);
    lateSends.failed(['a']);
    lateSends.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(due).toEqual([]);
    expect(lateSends.size).toBe(0);
  });

  it('tells a stop waiting for it when every waiting tenant has been handed over, not before', async () => {
    const { lateSends, due } = guard(10_000);
    lateSends.failed(['a']);
    vi.advanceTimersByTime(4_000);
    lateSends.failed(['b']);
    let empty = false;
    const emptied = lateSends.whenEmpty().then(() => {
      empty = true;
    });
    await vi.advanceTimersByTimeAsync(6_000);
    expect([due, empty]).toEqual([[['a']], false]);
    await vi.advanceTimersByTimeAsync(4_000);
    await emptied;
    expect(due).toEqual([['a'], ['b']]);
  });
});
