import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { BatchedLineWriter, fileDescriptorSink, type LineSink } from './batched-line-writer.js';

/** A sink that records batches and completes them only when told to (a slow or stuck stdout). */
function heldSink() {
  const batches: string[] = [];
  const pending: Array<(error?: Error | null) => void> = [];
  const sink: LineSink = {
    write(batch, done) {
      batches.push(batch);
      pending.push(done);
    },
  };
  return { sink, batches, complete: (error?: Error) => pending.shift()?.(error ?? null) };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const line = (n: number, width = 10) => `${String(n).padStart(width - 1, '0')}\n`;

describe('batched line writer', () => {
  it('writes the lines of one turn of the event loop as one batch, in order, after write() returned', async () => {
    const held = heldSink();
    const writer = new BatchedLineWriter(held.sink, { maxBufferedChars: 10_000 });
    for (let n = 0; n < 5; n++) expect(writer.write(line(n))).toBe(true);
    expect(held.batches).toEqual([]); // nothing is written on the request path itself
    await nextTurn();
    expect(held.batches).toEqual([[0, 1, 2, 3, 4].map((n) => line(n)).join('')]);
  });

  it('keeps one batch in flight and sends what arrived meanwhile as the next batch', async () => {
    const held = heldSink();
    const writer = new BatchedLineWriter(held.sink, { maxBufferedChars: 10_000 });
    writer.write(line(1));
    await nextTurn();
    writer.write(line(2));
    writer.write(line(3));
    await nextTurn();
    expect(held.batches).toHaveLength(1);
    held.complete();
    expect(held.batches).toEqual([line(1), line(2) + line(3)]);
  });

  it('cuts batches at whole lines no longer than maxBatchChars (atomic pipe writes)', async () => {
    const held = heldSink();
    const writer = new BatchedLineWriter(held.sink, { maxBufferedChars: 10_000, maxBatchChars: 25 });
    for (let n = 0; n < 5; n++) writer.write(line(n));
    writer.write(line(9, 40)); // longer than a batch: goes alone
    await nextTurn();
    for (let i = 0; i < 5; i++) held.complete();
    expect(held.batches).toEqual([line(0) + line(1), line(2) + line(3), line(4), line(9, 40)]);
  });

  it('drops and counts lines instead of buffering without bound when the destination is stuck', async () => {
    const held = heldSink();
    const dropped: number[] = [];
    const writer = new BatchedLineWriter(held.sink, {
      maxBufferedChars: 50,
      onDrop: (lines) => dropped.push(lines),
    });
    const accepted = Array.from({ length: 8 }, (_, n) => writer.write(line(n)));
    expect(accepted).toEqual([true, true, true, true, true, false, false, false]);
    expect(writer.dropped).toBe(3);
    expect(dropped).toEqual([1, 1, 1]);
    await nextTurn();
    expect(writer.write(line(8))).toBe(false); // the batch in flight still holds its room
    held.complete();
    expect(writer.write(line(9))).toBe(true); // room again once it was written
    await nextTurn();
    held.complete();
    expect(held.batches.join('')).toBe([0, 1, 2, 3, 4, 9].map((n) => line(n)).join(''));
  });

  it('counts the lines of a batch the destination failed as dropped and goes on with the next', async () => {
    const held = heldSink();
    const writer = new BatchedLineWriter(held.sink, { maxBufferedChars: 10_000 });
    writer.write(line(1));
    writer.write(line(2));
    await nextTurn();
    writer.write(line(3));
    held.complete(new Error('EIO'));
    expect(writer.dropped).toBe(2);
    const flushed = writer.flush();
    held.complete();
    await flushed;
    expect(held.batches).toEqual([line(1) + line(2), line(3)]);
  });

  it('flush() resolves once every queued line is written', async () => {
    const held = heldSink();
    const writer = new BatchedLineWriter(held.sink, { maxBufferedChars: 10_000 });
    await writer.flush(); // nothing queued
    writer.write(line(1));
    let flushed = false;
    const flushing = writer.flush().then(() => {
      flushed = true;
    });
    await nextTurn();
    expect(flushed).toBe(false);
    held.complete();
    await flushing;
    expect(flushed).toBe(true);
  });

  it('with a linger, lets lines of later turns share the write, and writes a full batch at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate'] });
    try {
      const held = heldSink();
      const writer = new BatchedLineWriter(held.sink, {
        maxBufferedChars: 10_000,
        maxBatchChars: 40,
        lingerMs: 20,
      });
      writer.write(line(1));
      await vi.advanceTimersByTimeAsync(10);
      writer.write(line(2));
      expect(held.batches).toEqual([]); // still lingering
      await vi.advanceTimersByTimeAsync(10);
      expect(held.batches).toEqual([line(1) + line(2)]);
      held.complete();
      for (let n = 3; n <= 6; n++) writer.write(line(n)); // a full batch (40 characters) waits
      await vi.advanceTimersByTimeAsync(0);
      expect(held.batches).toEqual([line(1) + line(2), line(3) + line(4) + line(5) + line(6)]);
      held.complete();
      writer.write(line(7));
      const flushed = writer.flush(); // shutdown does not wait for the linger
      await vi.advanceTimersByTimeAsync(0);
      expect(held.batches.at(-1)).toBe(line(7));
      held.complete();
      await flushed;
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes batches to a file descriptor with asynchronous fs.write', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 've-access-log-'));
    const file = path.join(dir, 'access.log');
    const fd = openSync(file, 'w');
    try {
      const writer = new BatchedLineWriter(fileDescriptorSink(fd), { maxBufferedChars: 1 << 20 });
      const lines = Array.from({ length: 2_000 }, (_, n) => `{"n":${n},"text":"ünïcödé"}\n`);
      for (const text of lines) writer.write(text);
      await writer.flush();
      expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
      expect(writer.dropped).toBe(0);
      expect(fileDescriptorSink(fd).maxBatchChars).toBeGreaterThan(4096); // a file takes larger writes
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
