import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import {
  type AppendResult,
  type EventStore,
  type RecordedEvent,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from '@vantageedge/shared/event-store/port';
import { type Decider, DomainError } from '../domain/decision.js';
import { ApiError, conflict, notFound } from '../http/errors.js';

export interface HandledCommand<State> {
  state: State;
  /** The stream's revision after the command; null only when the stream still does not exist. */
  revision: bigint | null;
  position: bigint | null;
}

export interface HandleOptions<State, Command> {
  store: EventStore;
  stream: string;
  decider: Decider<State, Command>;
  /** Builds the command from the current state (authorization and cross-aggregate checks go here). */
  command: (state: State) => Promise<Command> | Command;
  /** The metadata of the events appended, given the state they were decided on. */
  metadata: (state: State) => RecordedEvent['metadata'];
  /** If-Match: the revision the client last saw; a different current revision → 412. */
  ifMatch?: bigint | undefined;
}

export function fold<State>(
  decider: Pick<Decider<State, never>, 'initialState' | 'evolve'>,
  events: readonly RecordedEvent[],
): State {
  let state = decider.initialState();
  for (const event of events) if (isControlPlaneEvent(event)) state = decider.evolve(state, event);
  return state;
}

const precondition = (expected: bigint, actual: bigint | null) =>
  new ApiError(
    412,
    'precondition_failed',
    `If-Match "${expected}" does not match the current revision ${actual === null ? '(none)' : `"${actual}"`}`,
    [{ field: 'if-match', issue: 'stale revision' }],
  );

/**
 * Read the stream, fold, decide, append with expectedRevision = the revision read. A concurrent
 * writer makes the append fail: with If-Match that is a 412; without, the command is decided again
 * once on the fresh state, then reported as 409.
 */
export async function handleCommand<State, Command>(
  options: HandleOptions<State, Command>,
): Promise<HandledCommand<State>> {
  const { store, stream, decider } = options;
  for (let attempt = 0; ; attempt++) {
    const history = await store.readStream(stream);
    const state = fold(decider, history);
    const last = history.at(-1);
    const revision = last?.revision ?? null;
    if (options.ifMatch !== undefined && options.ifMatch !== revision)
      throw precondition(options.ifMatch, revision);
    const decision = decider.decide(await options.command(state), state);
    if (decision.events.length === 0) {
      return { state, revision, position: last?.position ?? null };
    }
    const metadata = options.metadata(state);
    const newEvents = decision.events.map((event) => ({ ...event, metadata }));
    let result: AppendResult;
    try {
      result = await store.appendToStream(stream, newEvents, {
        expectedRevision: revision ?? 'no_stream',
        ...(decision.reservations ? { reservations: decision.reservations } : {}),
      });
    } catch (error) {
      if (!(error instanceof WrongExpectedRevisionError)) throw error;
      if (options.ifMatch !== undefined) {
        throw precondition(options.ifMatch, error.actual === 'no_stream' ? null : error.actual);
      }
      if (attempt === 0) continue;
      throw conflict('the resource was changed concurrently; retry the request');
    }
    let next = state;
    for (const event of newEvents) next = decider.evolve(next, event);
    return {
      state: next,
      revision: result.nextExpectedRevision,
      position: result.position,
    };
  }
}

const RESERVED_FIELD: Array<[prefix: string, field: string, what: string]> = [
  ['subdomain:', 'subdomain', 'subdomain is already taken'],
  ['clerk_org:', 'clerk_org_id', 'this Clerk organization already belongs to a tenant'],
  ['tenant_user:', 'clerk_user_id', 'this Clerk user is already a user of the tenant'],
  ['api_key_hash:', 'key', 'api key collision'],
];

/** Expected failures of a command → the API's error shape; everything else propagates (500). */
export function toApiError(error: unknown): unknown {
  if (error instanceof DomainError) {
    switch (error.kind) {
      case 'not_found':
        return notFound(error.message.replace(/ not found$/, ''));
      case 'conflict':
        return conflict(error.message, error.field ? [{ field: error.field, issue: error.message }] : []);
      case 'invalid':
        return new ApiError(400, 'validation_failed', error.message, [
          { field: error.field ?? 'body', issue: error.message },
        ]);
    }
  }
  if (error instanceof UniquenessViolationError) {
    const match = RESERVED_FIELD.find(([prefix]) => error.value.startsWith(prefix));
    const [, field, issue] = match ?? ['', 'body', 'a unique value is already taken'];
    return conflict(issue, [{ field, issue: 'already taken' }]);
  }
  return error;
}
