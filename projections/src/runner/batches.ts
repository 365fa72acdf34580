/** A source that may tell when it is reading items already stored (see Subscription.readInFlight). */
export interface BatchSource<T> extends AsyncIterable<T> {
  readInFlight?(): Promise<void> | null;
}

/**
 * Groups an async stream into batches: waits for at least one item, then takes every item that is
 * already available, up to `maxSize`: what arrives before the next macrotask, and what a read the source
 * has in flight returns. During catch-up the batches fill up; live, each event is applied as soon as it
 * arrives.
 *
 * The source reads ahead while a batch is applied (a change notification wakes it), so the items it
 * holds when the next batch starts may predate changes committed since. Waiting for its read in flight
 * puts those changes in the next batch: a tenant's change made while another tenant's large snapshot is
 * stored waits for that batch only, not for one more built from what was read during it.
 */
export async function* batches<T>(source: BatchSource<T>, maxSize: number): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  const nextItem = (): Promise<IteratorResult<T>> => {
    const promise = iterator.next();
    // Handled later by `await`; this only keeps a rejection during a slow batch from being "unhandled".
    promise.catch(() => {});
    return promise;
  };
  let pending = nextItem();
  // No iterator.return() on exit: with a `next()` still pending it would wait for the next event;
  // the owner of the source (e.g. a Subscription) closes it.
  while (true) {
    const first = await pending;
    if (first.done) return;
    const batch: T[] = [first.value];
    pending = nextItem();
    let ended = false;
    while (batch.length < maxSize) {
      const result = await available(pending, source);
      if (result === NOT_YET) break;
      if (result.done) {
        ended = true;
        break;
      }
      batch.push(result.value);
      pending = nextItem();
    }
    yield batch;
    if (ended) return;
  }
}

const NOT_YET = Symbol('not yet');

/** The next item if it is available now or once the source's read in flight is done; else NOT_YET. */
async function available<T>(
  pending: Promise<IteratorResult<T>>,
  source: BatchSource<T>,
): Promise<IteratorResult<T> | typeof NOT_YET> {
  while (true) {
    const result = await Promise.race([pending, nextMacrotask()]);
    if (result !== NOT_YET) return result;
    const read = source.readInFlight?.();
    if (!read) return NOT_YET;
    await Promise.race([pending, read]);
  }
}

function nextMacrotask(): Promise<typeof NOT_YET> {
  return new Promise((resolve) => setImmediate(() => resolve(NOT_YET)));
}
