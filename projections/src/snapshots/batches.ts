/**
 * Groups an async stream into batches: waits for one item, then takes whatever else is already
 * available (arrives before the next macrotask), up to `maxSize`. Catch-up fills batches; live
 * events are applied one by one as soon as they arrive.
 */
export async function* batches<T>(source: AsyncIterable<T>, maxSize: number): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  const next = (): Promise<IteratorResult<T>> => {
    const promise = iterator.next();
    promise.catch(() => {}); // awaited below; avoids an "unhandled" report while a batch is applied
    return promise;
  };
  let pending = next();
  while (true) {
    const first = await pending;
    if (first.done) return;
    const batch: T[] = [first.value];
    pending = next();
    let ended = false;
    while (batch.length < maxSize) {
      const result = await Promise.race([pending, macrotask()]);
      if (result === NOT_YET) break;
      if (result.done) {
        ended = true;
        break;
      }
      batch.push(result.value);
      pending = next();
    }
    yield batch;
    if (ended) return;
  }
}

const NOT_YET = Symbol('not yet');
const macrotask = (): Promise<typeof NOT_YET> =>
  new Promise((resolve) => setImmediate(() => resolve(NOT_YET)));
