import type { z } from 'zod';

/**
 * `value` with every field it lacks that `schema` gives a default (`.default()`, `.prefault()`) set to
 * that default, through nested objects, nullable and optional fields and arrays of objects. Nothing else
 * changes: fields present keep their values (valid or not: judging them is the readers' job), fields
 * the schema does not know stay, and a value of another shape is returned as it is. Never throws.
 *
 * This is how an event written before a field existed reads as one written today (event-upcasters.ts):
 * a field added to a stored shape carries its default in the schema, and the default says what the
 * resource did before the field existed. It runs on every event read, so the walk of a schema is
 * compiled once (fillerOf) and a complete value costs a visit of the fields that hold defaults.
 */
export function withSchemaDefaults(schema: z.ZodType, value: unknown): unknown {
  return fillerOf(schema)(value);
}

/** Returns its value, or a copy with the absent defaults filled in. */
type Filler = (value: unknown) => unknown;

const unchanged: Filler = (value) => value;
const fillers = new WeakMap<z.ZodType, Filler>();

function fillerOf(schema: z.ZodType): Filler {
  const known = fillers.get(schema);
  if (known !== undefined) return known;
  // A recursive schema reaches itself while compiling: it gets this forwarder until compiled.
  let compiled: Filler | undefined;
  fillers.set(schema, (value) => compiled!(value));
  compiled = compileFiller(valueSchema(schema));
  fillers.set(schema, compiled);
  return compiled;
}

function compileFiller(inner: z.ZodType): Filler {
  const type = inner._zod.def.type;
  if (type === 'array') {
    const fillElement = fillerOf((inner as z.ZodArray)._zod.def.element as z.ZodType);
    return fillElement === unchanged ? unchanged : (value) => fillArray(value, fillElement);
  }
  if (type !== 'object') return unchanged;
  const shape = (inner as z.ZodObject)._zod.def.shape as Record<string, z.ZodType>;
  const fields: FieldFill[] = [];
  for (const [field, fieldSchema] of Object.entries(shape)) {
    const hasDefault = isDefaulted(fieldSchema);
    const fill = fillerOf(fieldSchema);
    if (hasDefault || fill !== unchanged) fields.push({ field, schema: fieldSchema, hasDefault, fill });
  }
  return fields.length === 0 ? unchanged : (value) => fillObject(value, fields);
}

interface FieldFill {
  readonly field: string;
  readonly schema: z.ZodType;
  /** Absent, it gets the schema's default. */
  readonly hasDefault: boolean;
  /** Present, its value is filled in turn. */
  readonly fill: Filler;
}

function fillObject(value: unknown, fields: readonly FieldFill[]): unknown {
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const { field, schema, hasDefault, fill } of fields) {
    let filled: unknown;
    if (Object.hasOwn(value, field)) {
      const present = value[field];
      filled = fill(present);
      if (filled === present) continue;
    } else {
      if (!hasDefault) continue;
      // Parsed each time: every read gets a default of its own (an array, an object), never a shared one.
      const parsed = schema.safeParse(undefined);
      if (!parsed.success || parsed.data === undefined) continue;
      filled = parsed.data;
    }
    copy ??= { ...value };
    copy[field] = filled;
  }
  return copy ?? value;
}

function fillArray(value: unknown, fillElement: Filler): unknown {
  if (!Array.isArray(value)) return value;
  let copy: unknown[] | undefined;
  for (let index = 0; index < value.length; index++) {
    const item: unknown = value[index];
    const filled = fillElement(item);
    if (filled === item) continue;
    copy ??= [...value];
    copy[index] = filled;
  }
  return copy ?? value;
}

/** The schema a present value is read with: defaults, nullable, optional and pipes unwrapped. */
function valueSchema(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = current._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType };
    if (
      (def.type === 'default' ||
        def.type === 'prefault' ||
        def.type === 'nullable' ||
        def.type === 'optional' ||
        def.type === 'readonly') &&
      def.innerType
    ) {
      current = def.innerType;
    } else if (def.type === 'pipe' && def.in && def.out) {
      // z.preprocess: the stored shape is the pipe's output schema; a schema piped into a transform: its input.
      current = def.in._zod.def.type === 'transform' ? def.out : def.in;
    } else {
      return current;
    }
  }
}

/** Whether `schema` gives an absent field a default. */
function isDefaulted(schema: z.ZodType): boolean {
  const type = schema._zod.def.type;
  return type === 'default' || type === 'prefault';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
