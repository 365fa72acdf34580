import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** One full, synchronous collection of the process's garbage (V8's `gc`, exposed on first use). */
export function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

export interface LiveMemoryOptions {
  /**
   * Full collections before the reading. Two by default: after one, buffers already dropped may still
   * count (socket chunks, megabytes of them); a second, straight after, leaves what is live.
   */
  collections?: 1 | 2;
}

/** The heap in use once garbage is collected. */
export function liveHeapBytes(options?: LiveMemoryOptions): number {
  return liveMemory(options).heapUsed;
}

/** The heap and the ArrayBuffers (Buffers among them) in use once garbage is collected. */
export function liveHeapAndBufferBytes(options?: LiveMemoryOptions): number {
  const { heapUsed, arrayBuffers } = liveMemory(options);
  return heapUsed + arrayBuffers;
}

/** The ArrayBuffers (Buffers among them) in use once garbage is collected. */
export function liveBufferBytes(options?: LiveMemoryOptions): number {
  return liveMemory(options).arrayBuffers;
}

function liveMemory({ collections = 2 }: LiveMemoryOptions = {}): NodeJS.MemoryUsage {
  for (let collection = 0; collection < collections; collection++) collectGarbage();
  return process.memoryUsage();
}
