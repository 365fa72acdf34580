import { Writable } from 'node:stream';

/**
 * Service-log lines on their way to a destination that may read slowly (stdout piped to a log
 * shipper). Node queues whatever a stream cannot take yet in memory, and winston writes without
 * waiting, so a shipper that falls behind while clients keep causing log lines (the control plane logs
 * every request) would grow the queue until the process runs out of memory. Here a line that would take
 * the destination's queue past `maxBufferedBytes` is dropped instead; the next line written once it has
 * room is preceded by a `log lines dropped` line with their count.
 */
export class BoundedLogStream extends Writable {
  readonly #destination: NodeJS.WritableStream;
  readonly #maxBufferedBytes: number;
  readonly #service: string;
  /** Lines dropped since the last `log lines dropped` line. */
  #dropped = 0;

  constructor(destination: NodeJS.WritableStream, options: { maxBufferedBytes: number; service: string }) {
    super();
    this.#destination = destination;
    this.#maxBufferedBytes = options.maxBufferedBytes;
    this.#service = options.service;
  }

  override _write(line: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const notice = this.#dropped > 0 ? this.#droppedNotice() : '';
    if (this.#queuedBytes() + notice.length + line.length > this.#maxBufferedBytes) {
      this.#dropped++;
    } else {
      if (notice !== '') {
        this.#destination.write(notice);
        this.#dropped = 0;
      }
      this.#destination.write(line);
    }
    done();
  }

  /** What the destination holds and has not written yet (a Node stream's writableLength). */
  #queuedBytes(): number {
    const { writableLength } = this.#destination as { writableLength?: unknown };
    return typeof writableLength === 'number' ? writableLength : 0;
  }

  #droppedNotice(): string {
    return `${JSON.stringify({
      timestamp: new Date().toISOString(),
      level: 'warn',
      service: this.#service,
      message: 'log lines dropped',
      dropped: this.#dropped,
      reason: 'the log destination could not keep up',
    })}\n`;
  }
}
