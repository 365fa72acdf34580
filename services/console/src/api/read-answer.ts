import type { z } from 'zod';
import { validate } from '../validation.js';
import { ApiProblem } from './client.js';

/**
 * An admin API answer read with its schema (the one the control plane builds it by): an answer of
 * another shape is shown as a problem naming the fields that are wrong, not as a page that breaks
 * halfway through.
 */
export function readAnswer<S extends z.ZodType>(schema: S, status: number, body: unknown): z.infer<S> {
  const checked = validate(schema, body);
  if (checked.ok) return checked.value;
  const details = Object.entries(checked.issues)
    .slice(0, 5)
    .map(([field, issue]) => ({ field, issue }));
  throw new ApiProblem(
    status,
    'unreadable_answer',
    'the control plane answered with something this console cannot read (another version of VantageEdge?)',
    details,
  );
}
