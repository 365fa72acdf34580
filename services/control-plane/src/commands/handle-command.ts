import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import {
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type RecordedEvent,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from '@vantageedge/shared/event-store/port';
import type { Decider } from '../domain/decision.js';
import { conflict, DomainError, preconditionFailed } from '../domain/errors.js';
import { aggregateFolds, type FoldedStream } from './aggregate-folds.js';
import { type CommandBudget, chargeEventBytes, type ExpectedRevisions } from './context.js';
import type { SnapshotGuard } from './snapshot-guard.js';

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
  metadata: (state: State) => EventMetadata;
  /** If-Match: the revisions the client accepts; any other current revision → precondition_failed. */
  ifMatch?: ExpectedRevisions | undefined;
  /**
   * The revision If-Match is compared with: by default the stream's; a stream holding several entities
   * (the tenant and its users) compares the addressed entity's own last revision.
   */
  revisionOf?: (state: State, streamRevision: bigint | null) => bigint | null;
  /**
   * The state the stream is folded onto; absent, or answering undefined: the decider's initial state
   * (then the fold kept of the stream is folded on, aggregate-folds.ts).
   */
  initialState?: () => Promise<State | undefined> | State | undefined;
  /**
   * What the events do to their tenant's gateway snapshot, checked before they are appended (the
   * snapshot budget: snapshot-guard.ts). Every command passes
   * `deps.snapshotGuard`; absent (the demo seed, tests of deciders): not checked.
   */
  snapshotGuard: SnapshotGuard | undefined;
  /**
   * The request's budget (`deps.commandBudget`, every command passes it): the events' bytes are charged
   * to their tenant once the snapshot guard let them through, before they are appended.
   */
  commandBudget: CommandBudget | undefined;
}

export function fold<State>(
  decider: Pick<Decider<State, never>, 'initialState' | 'evolve' | 'evolveAll'>,
  events: readonly RecordedEvent[],
  initial: State = decider.initialState(),
): State {
  if (decider.evolveAll) return decider.evolveAll(initial, events.filter(isControlPlaneEvent));
  let state = initial;
  for (const event of events) if (isControlPlaneEvent(event)) state = decider.evolve(state, event);
  return state;
}

/** The stream's current state: on the fold kept of it, unless folded onto a state of the command's own. */
async function foldCurrent<State, Command>(
  store: EventStore,
  stream: string,
  decider: Decider<State, Command>,
  options: Pick<HandleOptions<State, Command>, 'initialState'>,
): Promise<FoldedStream<State>> {
  const initial = await options.initialState?.();
  if (initial === undefined) return aggregateFolds.fold(store, stream, decider);
  const history = await store.readStream(stream);
  const last = history.at(-1);
  return {
    state: fold(decider, history, initial),
    revision: last?.revision ?? null,
    position: last?.position ?? null,
  };
}

/** The If-Match list as the client sent it (its weak tags left out: they never match). */
export function describeIfMatch(expected: ExpectedRevisions): string {
  return expected.length === 0
    ? 'with weak tags only'
    : expected.map((revision) => `"${revision}"`).join(', ');
}

const stale = (expected: ExpectedRevisions, actual: bigint | null | 'changed') =>
  preconditionFailed(
    `If-Match ${describeIfMatch(expected)} does not match the current revision ${
      actual === 'changed' ? '(it changed concurrently)' : actual === null ? '(none)' : `"${actual}"`
    }`,
    'stale revision',
  );

/** `precondition_failed` when the client sent an If-Match naming no current revision. */
export function requireIfMatch(ifMatch: ExpectedRevisions | undefined, current: bigint | null): void {
  if (ifMatch !== undefined && (current === null || !ifMatch.includes(current)))
    throw stale(ifMatch, current);
}

const RESERVED_FIELD: Array<[prefix: string, field: string, message: string, issue?: string]> = [
  ['subdomain:', 'subdomain', 'subdomain is already taken'],
  ['clerk_org:', 'clerk_org_id', 'this Clerk organization already belongs to a tenant'],
  ['tenant_user:', 'clerk_user_id', 'this Clerk user is already a user of the tenant'],
  ['api_key_hash:', 'key', 'api key collision'],
  [
    'custom_domain:',
    'domain',
    'this domain is already claimed by another tenant',
    'already claimed by another tenant',
  ],
];

/** A unique value another stream holds → `conflict` on the request field it came from. */
function taken(error: UniquenessViolationError): DomainError {
  const [, field, message, issue] = RESERVED_FIELD.find(([prefix]) => error.value.startsWith(prefix)) ?? [
    '',
    'body',
    'a unique value is already taken',
  ];
  return new DomainError('conflict', message, field, { issue: issue ?? 'already taken', cause: error });
}

/**
 * Read the stream, fold, decide, check what the events do to their tenant's gateway snapshot
 * (`snapshotGuard`), append with expectedRevision = the revision read. A concurrent
 * writer makes the append fail; the command is then decided once more on the fresh state (If-Match
 * checked again), and a second race is reported (`precondition_failed` with If-Match, else
 * `conflict`). Every expected failure leaves as a DomainError.
 */
export async function handleCommand<State, Command>(
  options: HandleOptions<State, Command>,
): Promise<HandledCommand<State>> {
  const { store, stream, decider } = options;
  const revisionOf = options.revisionOf ?? ((_state, streamRevision) => streamRevision);
  for (let attempt = 0; ; attempt++) {
    const { state, revision: streamRevision, position } = await foldCurrent(store, stream, decider, options);
    // The command's checks come first: a caller who may not act on the resource gets their 403 or
    // 404, never a 412 naming its revision (RFC 9110 §13.2.1).
    const command = await options.command(state);
    requireIfMatch(options.ifMatch, revisionOf(state, streamRevision));
    const decision = decider.decide(command, state);
    if (decision.events.length === 0) {
      return { state, revision: streamRevision, position };
    }
    const metadata = options.metadata(state);
    const newEvents = decision.events.map((event) => ({ ...event, metadata }));
    const append = async () => {
      await chargeEventBytes(options.commandBudget, newEvents);
      return store.appendToStream(stream, newEvents, {
        expectedRevision: streamRevision ?? 'no_stream',
        ...(decision.reservations ? { reservations: decision.reservations } : {}),
      });
    };
    let result: AppendResult;
    try {
      result = options.snapshotGuard ? await options.snapshotGuard.guard(newEvents, append) : await append();
    } catch (error) {
      if (error instanceof UniquenessViolationError) throw taken(error);
      if (!(error instanceof WrongExpectedRevisionError)) throw error;
      // Another writer got there first. Decide once more on the fresh state: If-Match is checked again
      // there (the write may have touched another entity of the stream); a second race is reported.
      if (attempt === 0) continue;
      if (options.ifMatch !== undefined) throw stale(options.ifMatch, 'changed');
      throw conflict('the resource was changed concurrently; retry the request');
    }
    const first = result.nextExpectedRevision - BigInt(newEvents.length - 1);
    let next = state;
    newEvents.forEach((event, index) => {
      next = decider.evolve(next, { ...event, revision: first + BigInt(index) });
    });
    return { state: next, revision: result.nextExpectedRevision, position: result.position };
  }
}
