import type { EventStore } from '@vantageedge/shared/event-store/port';
import { type Foldable, foldLatest } from './aggregate-folds.js';

/**
 * The folds a config apply or rollback run checks its steps with (the caller's role among the tenant's
 * members, that the tenant is live, a route's hosts): folding the tenant's whole stream for each check
 * cost steps × members events on the control plane's thread.
 */
export interface StreamFolds {
  fold<State>(store: EventStore, stream: string, decider: Foldable<State>): Promise<State>;
}

/**
 * Folds for one config apply or rollback run: the process's kept folds (aggregate-folds.ts), which
 * read every stream on from the revision they hold and keep the rehearsal store's folds apart from the
 * real store's, so the steps after the first read only what was appended since.
 */
export function createStreamFolds(): StreamFolds {
  return { fold: foldLatest };
}

/** A stream folded, through `folds` when the caller has them. */
export async function foldStream<State>(
  store: EventStore,
  stream: string,
  decider: Foldable<State>,
  folds: StreamFolds | undefined,
): Promise<State> {
  return folds ? folds.fold(store, stream, decider) : foldLatest(store, stream, decider);
}
