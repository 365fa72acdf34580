import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { LRUCache } from 'lru-cache';
import type { Decider } from '../domain/decision.js';
import { fold } from './handle-command.js';

export type Foldable<State> = Pick<Decider<State, never>, 'initialState' | 'evolve' | 'evolveAll'>;

/** A stream folded up to its last event. */
export interface FoldedStream<State> {
  state: State;
  /** The last event's revision and position; null when the stream does not exist. */
  revision: bigint | null;
  position: bigint | null;
}

/**
 * Every command folds the stream it changes and its tenant's stream, on the event loop every tenant's
 * admin requests share. Folding them whole each time made a command's cost grow with the stream's
 * history: a tenant admin renaming one route 20,000 times made each later command of that tenant cost
 * about a second of the loop. The folds are kept instead (per event store, per decider), and each fold
 * reads the stream on from the revision kept — never taking a kept fold as current, since other
 * replicas and commands append meanwhile. A stream folded for the first time is read a page at a time,
 * so the requests of other tenants run between its pages.
 *
 * Deciders' `evolve` never changes the state it is given, so a kept state is shared safely.
 */
export interface AggregateFolds {
  fold<State>(
    store: EventStore,
    stream: string,
    decider: Foldable<State>,
    onRead?: StreamReadObserver,
  ): Promise<FoldedStream<State>>;
}

/** Told of each read of the stream a fold makes, with the events it returned (none: the fold was current). */
export type StreamReadObserver = (events: readonly RecordedEvent[]) => void;

interface Kept {
  state: unknown;
  revision: bigint;
  position: bigint;
}

/**
 * Streams whose folds are kept, least recently used out. A fold is about its resource's size: a route at
 * most ~32 KiB, a tenant at its member limit a few hundred KiB; 2,000 are the streams of the commands
 * of the last minutes, not every stream.
 */
export const DEFAULT_KEPT_STREAM_FOLDS = 2_000;
/** Events read at a time when a stream is folded from its start. */
export const FOLD_PAGE_EVENTS = 1_000;

export function createAggregateFolds(
  options: { maxStreams?: number | undefined; pageEvents?: number | undefined } = {},
): AggregateFolds {
  const pageEvents = options.pageEvents ?? FOLD_PAGE_EVENTS;
  // The rehearsal store of a config apply holds events never appended: its folds are its own.
  const byStore = new WeakMap<EventStore, LRUCache<string, WeakMap<object, Kept>>>();

  function keptOf(store: EventStore): LRUCache<string, WeakMap<object, Kept>> {
    let kept = byStore.get(store);
    if (kept === undefined) {
      kept = new LRUCache({ max: options.maxStreams ?? DEFAULT_KEPT_STREAM_FOLDS });
      byStore.set(store, kept);
    }
    return kept;
  }

  async function foldOn<State>(
    store: EventStore,
    stream: string,
    decider: Foldable<State>,
    from: Kept | undefined,
    onRead: StreamReadObserver | undefined,
  ): Promise<Kept | undefined> {
    let kept = from;
    for (;;) {
      const fromRevision = kept === undefined ? 0n : kept.revision + 1n;
      const page: RecordedEvent[] = await store.readStream(stream, { fromRevision, maxCount: pageEvents });
      onRead?.(page);
      const last = page.at(-1);
      if (last === undefined) return kept;
      // Anything but the next revision is no continuation of the fold kept: folded from the start.
      if (kept !== undefined && page[0]?.revision !== fromRevision) {
        return foldOn(store, stream, decider, undefined, onRead);
      }
      const state = fold(decider, page, kept === undefined ? decider.initialState() : (kept.state as State));
      kept = { state, revision: last.revision, position: last.position };
      if (page.length < pageEvents) return kept;
    }
  }

  return {
    async fold<State>(
      store: EventStore,
      stream: string,
      decider: Foldable<State>,
      onRead?: StreamReadObserver,
    ) {
      const streams = keptOf(store);
      const before = streams.get(stream)?.get(decider);
      const after = await foldOn(store, stream, decider, before, onRead);
      // A stream that does not exist takes no place among the kept ones: a plan may name any ids.
      if (after === undefined) return { state: decider.initialState(), revision: null, position: null };
      let byDecider = streams.get(stream);
      if (byDecider === undefined) {
        byDecider = new WeakMap();
        streams.set(stream, byDecider);
      }
      // Folds running at once each keep what they read; the one that read furthest stays.
      const current = byDecider.get(decider);
      if (current === undefined || current.revision < after.revision) byDecider.set(decider, after);
      return { state: after.state as State, revision: after.revision, position: after.position };
    },
  };
}

/** The control plane's folds, shared by every command of the process. */
export const aggregateFolds: AggregateFolds = createAggregateFolds();

/** A stream's current state, folded on from the fold kept of it. */
export async function foldLatest<State>(
  store: EventStore,
  stream: string,
  decider: Foldable<State>,
  onRead?: StreamReadObserver,
): Promise<State> {
  return (await aggregateFolds.fold(store, stream, decider, onRead)).state;
}
