/**
 * Groups an async stream into batches: waits for at least one item, then takes every item that is
 * already available (arrives before the next macrotask), up to `maxSize`. During catch-up the
 * batches fill up; live, each event is applied as soon as it arrives.
 */
export async function* batches<T>(source: AsyncIterable<T>, maxSize: number): AsyncGenerator<T[]> {
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
      const result = await Promise.race([pending, nextMacrotask()]);
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

function nextMacrotask(): Promise<typeof NOT_YET> {
  return new Promise((resolve) => setImmediate(() => resolve(NOT_YET)));
}
