export interface PacedFileWritesOptions {
  /** Writes what changed since the previous write. */
  write: () => Promise<void>;
  /** How long changes gather before a write after a quiet period. */
  delayMs: number;
  /** The least time from the end of one write to the start of the next. */
  intervalMs: number;
  onError: (error: Error) => void;
}

export interface PacedFileWrites {
  /** Something the file holds changed. */
  changed(): void;
  /** Waits for a write in progress and writes what changed since; no write starts afterwards. */
  close(): Promise<void>;
}

/**
 * When the snapshot store is written. A tenant that keeps changing would otherwise rewrite its file on
 * every change, so a replica whose tenants keep changing writes at most once per interval, one write
 * at a time: a slow disk delays the next write instead of queueing one per change. A change after a
 * quiet period is written after `delayMs`; any change is on disk within `intervalMs` plus a write in
 * progress.
 */
export function paceFileWrites(options: PacedFileWritesOptions): PacedFileWrites {
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let changedSinceWrite = false;
  let lastWriteEnded = Number.NEGATIVE_INFINITY;
  let closed = false;

  const writeNow = (): Promise<void> => {
    changedSinceWrite = false;
    return options
      .write()
      .catch(options.onError)
      .finally(() => {
        lastWriteEnded = Date.now();
      });
  };

  const schedule = (): void => {
    if (closed || timer || writing || !changedSinceWrite) return;
    const wait = Math.max(options.delayMs, lastWriteEnded + options.intervalMs - Date.now());
    timer = setTimeout(() => {
      timer = undefined;
      writing = writeNow().finally(() => {
        writing = undefined;
        schedule();
      });
    }, wait);
    timer.unref();
  };

  return {
    changed() {
      changedSinceWrite = true;
      schedule();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await writing;
      if (changedSinceWrite) await writeNow();
    },
  };
}
