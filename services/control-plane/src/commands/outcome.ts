import type { Lifecycle } from '../domain/decision.js';
import { notFound } from '../domain/errors.js';
import type { CommandOutcome } from './context.js';
import type { HandledCommand } from './handle-command.js';

type Known<Data> = Extract<Lifecycle<Data>, { data: Data }>;

/**
 * A handled command on a one-entity stream → its outcome: the resource as the API shows it, the
 * stream revision (ETag) and the position of its last event.
 */
export function outcomeOf<Data, Resource>(
  what: string,
  result: HandledCommand<Lifecycle<Data>>,
  view: (state: Known<Data>) => Resource,
): CommandOutcome<Resource> {
  const { state, revision, position } = result;
  if (state.status === 'absent' || revision === null || position === null) throw notFound(what, 'id');
  return { resource: view(state), revision, position };
}
