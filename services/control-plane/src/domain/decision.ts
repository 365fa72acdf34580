import type { ControlPlaneEventMap, ControlPlaneEventType } from '@vantageedge/shared/domain/events';
import type { Reservations } from '@vantageedge/shared/event-store/port';
import { notFound } from './errors.js';

export { DomainError } from './errors.js';

/** An event as a decider produces it: type and data; the command handler adds the metadata. */
export type DomainEvent = {
  [Type in ControlPlaneEventType]: { type: Type; data: ControlPlaneEventMap[Type] };
}[ControlPlaneEventType];

/**
 * What an event needs to be folded: decided events plus when they happened, and, once stored, their
 * revision in the stream (entities sharing a stream track their own last revision: their ETag).
 */
export type FoldableEvent = DomainEvent & { metadata: { occurred_at: string }; revision?: bigint };

/** The outcome of a command: the events to append and the unique values they claim or release. */
export interface Decision {
  events: DomainEvent[];
  reservations?: Reservations;
}

/** Every aggregate's write-side state: never created, live, or deleted (tombstoned). */
export type Lifecycle<Data> =
  | { status: 'absent' }
  | {
      status: 'active' | 'deleted';
      data: Data;
      created_at: string;
      updated_at: string;
      /** Stream revision of the entity's last event (absent for decided, not yet stored events). */
      revision?: bigint;
    };

/** An Emmett-style decider: pure functions, unit-tested without servers. */
export interface Decider<State, Command> {
  initialState: () => State;
  evolve: (state: State, event: FoldableEvent) => State;
  /**
   * `evolve` over several events at once (the same state), for a decider whose `evolve` copies a
   * collection that grows with the stream: a fold then copies it once, not once per event.
   */
  evolveAll?: (state: State, events: readonly FoldableEvent[]) => State;
  decide: (command: Command, state: State) => Decision;
}

export function live<Data>(state: Lifecycle<Data>, what: string): Extract<Lifecycle<Data>, { data: Data }> {
  // Every decider decides on its own stream: the resource is the one the request's path names.
  if (state.status !== 'active') throw notFound(what, 'id');
  return state;
}

const at = (revision: bigint | undefined) => (revision === undefined ? {} : { revision });

export function created<Data>(data: Data, occurredAt: string, revision?: bigint): Lifecycle<Data> {
  return { status: 'active', data, created_at: occurredAt, updated_at: occurredAt, ...at(revision) };
}

export function changed<Data>(
  state: Lifecycle<Data>,
  data: Data,
  occurredAt: string,
  revision?: bigint,
): Lifecycle<Data> {
  if (state.status === 'absent') return state;
  return { ...state, data, updated_at: occurredAt, ...at(revision) };
}

export function deleted<Data>(
  state: Lifecycle<Data>,
  occurredAt: string,
  revision?: bigint,
): Lifecycle<Data> {
  if (state.status === 'absent') return state;
  return { ...state, status: 'deleted', updated_at: occurredAt, ...at(revision) };
}

/** Event types whose data carries a complete `Data` (creation and state-carrying update events). */
type StateEventType<Data> = {
  [Type in ControlPlaneEventType]: ControlPlaneEventMap[Type] extends Data ? Type : never;
}[ControlPlaneEventType];

/**
 * The evolve of an aggregate whose events carry its whole state: the creation event makes it live,
 * the update event replaces its data (minus `changed_fields`), the removal event tombstones it.
 */
export function lifecycleEvolve<Data>(types: {
  created: StateEventType<Data>;
  changed: StateEventType<Data & { changed_fields: string[] }>;
  deleted: ControlPlaneEventType;
}): (state: Lifecycle<Data>, event: FoldableEvent) => Lifecycle<Data> {
  return (state, event) => {
    const { occurred_at } = event.metadata;
    if (event.type === types.created)
      return created(event.data as unknown as Data, occurred_at, event.revision);
    if (event.type === types.changed) {
      const { changed_fields: _, ...data } = event.data as unknown as Data & { changed_fields: string[] };
      return changed(state, data as Data, occurred_at, event.revision);
    }
    if (event.type === types.deleted) return deleted(state, occurred_at, event.revision);
    return state;
  };
}

/** A partial update: absent or undefined fields stay unchanged. */
export type Changes<T> = { [Field in keyof T]?: T[Field] | undefined };
