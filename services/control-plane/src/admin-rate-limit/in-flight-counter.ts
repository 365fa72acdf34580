import type { Response } from 'express';

/** Work running at once per key (a caller, a tenant), at most `max` of each key. */
export interface InFlightCounter {
  readonly max: number;
  /**
   * Takes a place of `key`: the function that gives it back (once, however often it is called), or null
   * when `key` has `max` running.
   */
  enter(key: string): (() => void) | null;
}

/**
 * Of `max` places of one tenant, the most its callers with read access only may hold together: all but
 * a quarter (at least one kept for the tenant's writers once there are two), so a viewer holding every
 * place it may still leaves the tenant's admins and the platform admins room to act.
 */
export function readersShareOf(max: number): number {
  return max < 2 ? max : max - Math.max(1, Math.floor(max / 4));
}

export function createInFlightCounter(max: number): InFlightCounter {
  const running = new Map<string, number>();
  return {
    max,
    enter(key) {
      const count = running.get(key) ?? 0;
      if (count >= max) return null;
      running.set(key, count + 1);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        const left = (running.get(key) ?? 1) - 1;
        if (left === 0) running.delete(key);
        else running.set(key, left);
      };
    },
  };
}

/**
 * Calls `release` once the handler has answered, not when the client leaves: a handler's statements
 * run on (holding pooled connections) after a 'close', so work counted until its client left could be
 * held open without bound by a client closing its connections at once. node emits no 'finish' for an
 * answer to a client gone, hence the wrapped end().
 */
export function releaseWhenAnswered(res: Response, release: () => void): void {
  let released = false;
  const once = () => {
    if (released) return;
    released = true;
    release();
  };
  const answer = res.end;
  res.end = function (this: typeof res, ...args: Parameters<typeof res.end>) {
    once();
    return answer.apply(this, args);
  } as typeof res.end;
  res.on('close', () => {
    if (res.headersSent) once(); // answered, then cut off without end() (express's error after the head)
  });
}
