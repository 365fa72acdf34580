import { fstatSync, write as fsWrite } from 'node:fs';
import type { Writable } from 'node:stream';

/**
 * Where batches of whole lines go. `done` is called once the batch is written (or failed); the writer
 * never has more than one batch in flight.
 */
export interface LineSink {
  write(batch: string, done: (error?: Error | null) => void): void;
  /** The largest batch this destination takes in one write (see BatchedLineWriterOptions). */
  readonly maxBatchChars?: number;
  /** How long a line should wait for others to share its write here (see BatchedLineWriterOptions). */
  readonly lingerMs?: number;
}

export interface BatchedLineWriterOptions {
  /** Lines waiting or being written, in UTF-16 units; past it new lines are dropped and counted. */
  maxBufferedChars: number;
  /**
   * One write carries at most this many characters of whole lines (a longer line goes alone). Default:
   * the sink's own, else PIPE_BUF, which keeps every write to a pipe atomic, so lines never interleave
   * with the service log lines other code writes to the same stdout (access-log lines are ASCII, so
   * characters are bytes, and at most PIPE_BUF long).
   */
  maxBatchChars?: number;
  /** Lines dropped (buffer full, or the sink failed their batch). */
  onDrop?: (lines: number) => void;
  /**
   * How long a line may wait for others to share its write, unless a full batch is waiting (the
   * producer's linger.ms of Kafka). 0 (default): the next turn of the event loop. Under load a few
   * milliseconds turn one write per request or two into one per full batch. Default: the sink's own,
   * else 0.
   */
  lingerMs?: number;
}

const PIPE_BUF = 4096;

/**
 * Asynchronous, batched line output that never blocks the request path: `write` appends to a buffer
 * and returns; the buffer is handed to the sink on the next turn of the event loop, one batch in flight
 * at a time, so under load many lines share one write. Bounded: when `maxBufferedChars` are waiting
 * (a slow or stuck destination), new lines are dropped and counted instead of growing memory or
 * applying backpressure to requests.
 */
export class BatchedLineWriter {
  readonly #sink: LineSink;
  readonly #maxBuffered: number;
  readonly #maxBatch: number;
  readonly #onDrop: (lines: number) => void;
  readonly #lingerMs: number;
  #lines: string[] = [];
  /** Characters queued or in flight (the bound), and of those the ones queued. */
  #bufferedChars = 0;
  #waitingChars = 0;
  #inFlight = false;
  #scheduled = false;
  #lingerTimer: NodeJS.Timeout | undefined;
  #idle: Array<() => void> = [];
  #dropped = 0;

  constructor(sink: LineSink, options: BatchedLineWriterOptions) {
    this.#sink = sink;
    this.#maxBuffered = options.maxBufferedChars;
    this.#maxBatch = options.maxBatchChars ?? sink.maxBatchChars ?? PIPE_BUF;
    this.#onDrop = options.onDrop ?? (() => {});
    this.#lingerMs = options.lingerMs ?? sink.lingerMs ?? 0;
  }

  /** Lines dropped since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Queues one line (ending in "\n"); false when it was dropped because the buffer is full. */
  write(line: string): boolean {
    if (this.#bufferedChars + line.length > this.#maxBuffered) {
      this.#drop(1);
      return false;
    }
    this.#lines.push(line);
    this.#bufferedChars += line.length;
    this.#waitingChars += line.length;
    if (!this.#inFlight) this.#schedule();
    return true;
  }

  /** Resolves when every line queued so far has been written (or dropped). */
  flush(): Promise<void> {
    if (this.#lines.length === 0 && !this.#inFlight) return Promise.resolve();
    if (!this.#inFlight) this.#flushSoon();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** The next write: at once when a full batch waits or nothing may linger, else after the linger. */
  #schedule(): void {
    if (this.#lingerMs === 0 || this.#waitingChars >= this.#maxBatch) this.#flushSoon();
    else if (this.#lingerTimer === undefined && !this.#scheduled) {
      this.#lingerTimer = setTimeout(this.#flushNext, this.#lingerMs);
      this.#lingerTimer.unref();
    }
  }

  #flushSoon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flushNext);
  }

  readonly #flushNext = (): void => {
    this.#scheduled = false;
    if (this.#lingerTimer !== undefined) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
    }
    if (this.#inFlight) return;
    if (this.#lines.length === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    let count = 0;
    let chars = 0;
    while (count < this.#lines.length) {
      const length = this.#lines[count]!.length;
      if (count > 0 && chars + length > this.#maxBatch) break;
      chars += length;
      count++;
    }
    let batch: string;
    if (count === this.#lines.length) {
      batch = this.#lines.join('');
      this.#lines = [];
    } else {
      batch = this.#lines.splice(0, count).join('');
    }
    this.#inFlight = true;
    this.#waitingChars -= chars;
    this.#sink.write(batch, (error) => {
      this.#inFlight = false;
      this.#bufferedChars -= chars;
      if (error) this.#drop(count);
      const lingering = this.#lingerMs > 0 && this.#waitingChars < this.#maxBatch;
      if (lingering && this.#lines.length > 0 && this.#idle.length === 0) this.#schedule();
      else this.#flushNext();
    });
  };

  #drop(lines: number): void {
    this.#dropped += lines;
    this.#onDrop(lines);
  }
}

/** Batch size for a regular file: one write() to a file is never interleaved with another's. */
const FILE_BATCH = 64 * 1024;
/**
 * A write to a descriptor (a syscall and a thread-pool hand-off) costs more than building many lines:
 * under load, waiting this long turns about one write per request into one per full batch. A line
 * reaches the descriptor at most this late.
 */
const DESCRIPTOR_LINGER_MS = 20;

/**
 * A file descriptor (stdout: 1) written with asynchronous fs.write on libuv's thread pool, so a slow
 * disk or a full pipe holds a pool thread, never the event loop. Partial writes are continued; EAGAIN
 * (a non-blocking pipe that is full) is retried shortly. Batches are PIPE_BUF-sized for a pipe, socket
 * or terminal (atomic there) and larger for a regular file (fewer writes).
 */
export function fileDescriptorSink(fd: number): LineSink {
  let regularFile = false;
  try {
    regularFile = fstatSync(fd).isFile();
  } catch {
    // Not a descriptor we can inspect: keep the atomic size.
  }
  return {
    maxBatchChars: regularFile ? FILE_BATCH : PIPE_BUF,
    lingerMs: DESCRIPTOR_LINGER_MS,
    write(batch, done) {
      const buffer = Buffer.from(batch, 'utf8');
      const writeFrom = (offset: number): void => {
        fsWrite(fd, buffer, offset, buffer.length - offset, null, (error, written) => {
          if (error) {
            if (error.code === 'EAGAIN') setTimeout(() => writeFrom(offset), 5).unref();
            else done(error);
            return;
          }
          if (offset + written < buffer.length) writeFrom(offset + written);
          else done();
        });
      };
      writeFrom(0);
    },
  };
}

/** A Node stream (tests, or a destination that is a stream); done when the stream took the batch. */
export function streamSink(stream: Writable): LineSink {
  return {
    write(batch, done) {
      stream.write(batch, (error) => done(error ?? null));
    },
  };
}
