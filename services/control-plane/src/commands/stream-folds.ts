import type { EventStore } from '@vantageedge/shared/event-store/port';
import { type Foldable, foldLatest } from './aggregate-folds.js';
import { fold } from './handle-command.js';

/**
 * One stream's folds kept for the steps of one config apply or rollback run: every step checks the
 * tenant's stream (the caller's role among its members, that it is live, a route's hosts), and folding
 * the whole stream for each check cost steps × members events on the control plane's thread.
 *
 * A kept fold is never taken as current: each fold reads the stream on from the revision after the one
 * it holds, since commands that do not take the tenant's config lock (members, API keys, domains, …)
 * append to it meanwhile, and every check must see them. Folds are kept per store, so the rehearsal's
 * (holding its unappended events) and the real store's never mix, and per decider.
 */
export interface StreamFolds {
  fold<State>(store: EventStore, stream: string, decider: Foldable<State>): Promise<State>;
}

interface Kept {
  state: unknown;
  revision: bigint;
}

/** Folds of `kept` only (the apply's own tenant stream): any other stream is folded whole, as always. */
export function createStreamFolds(kept: string): StreamFolds {
  const folds = new Map<EventStore, Map<object, Kept>>();
  return {
    async fold<State>(store: EventStore, stream: string, decider: Foldable<State>): Promise<State> {
      if (stream !== kept) return foldLatest(store, stream, decider);
      let byDecider = folds.get(store);
      if (byDecider === undefined) {
        byDecider = new Map();
        folds.set(store, byDecider);
      }
      const known = byDecider.get(decider);
      if (known !== undefined) {
        const events = await store.readStream(stream, { fromRevision: known.revision + 1n });
        const first = events[0];
        if (first === undefined) return known.state as State;
        // Anything but the next revision is no continuation of the fold kept: folded from the start below.
        if (first.revision === known.revision + 1n) {
          const state = fold(decider, events, known.state as State);
          byDecider.set(decider, { state, revision: events.at(-1)?.revision ?? known.revision });
          return state;
        }
      }
      const events = await store.readStream(stream);
      const state = fold(decider, events);
      const last = events.at(-1);
      if (last !== undefined) byDecider.set(decider, { state, revision: last.revision });
      return state;
    },
  };
}

/** A stream folded: through `folds` when the caller keeps them, else read and folded whole. */
export async function foldStream<State>(
  store: EventStore,
  stream: string,
  decider: Foldable<State>,
  folds: StreamFolds | undefined,
): Promise<State> {
  return folds ? folds.fold(store, stream, decider) : foldLatest(store, stream, decider);
}
