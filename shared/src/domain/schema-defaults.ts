import type { z } from 'zod';

/**
 * `value` with every field it lacks that `schema` gives a default (`.default()`, `.prefault()`) set to
 * that default, through nested objects, nullable and optional fields and arrays of objects. Nothing else
 * changes: fields present keep their values (valid or not: judging them is the readers' job), fields
 * the schema does not know stay, and a value of another shape is returned as it is. Never throws.
 *
 * This is how an event written before a field existed reads as one written today (event-upcasters.ts):
 * a field added to a stored shape carries its default in the schema, and the default says what the
 * resource did before the field existed.
 */
export function withSchemaDefaults(schema: z.ZodType, value: unknown): unknown {
  const inner = valueSchema(schema);
  const type = inner._zod.def.type;
  if (type === 'array' && Array.isArray(value)) {
    const element = (inner as z.ZodArray)._zod.def.element as z.ZodType;
    let copy: unknown[] | undefined;
    value.forEach((item, index) => {
      const filled = withSchemaDefaults(element, item);
      if (filled === item) return;
      copy ??= [...value];
      copy[index] = filled;
    });
    return copy ?? value;
  }
  if (type !== 'object' || !isPlainObject(value)) return value;
  const shape = (inner as z.ZodObject)._zod.def.shape as Record<string, z.ZodType>;
  let copy: Record<string, unknown> | undefined;
  for (const [field, fieldSchema] of Object.entries(shape)) {
    const present = Object.hasOwn(value, field);
    const filled = present ? withSchemaDefaults(fieldSchema, value[field]) : defaultOf(fieldSchema);
    if (filled === (present ? value[field] : undefined)) continue;
    copy ??= { ...value };
    copy[field] = filled;
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

/** The default `schema` gives an absent field, or undefined when it gives none. */
function defaultOf(schema: z.ZodType): unknown {
  const type = schema._zod.def.type;
  if (type !== 'default' && type !== 'prefault') return undefined;
  const parsed = schema.safeParse(undefined);
  return parsed.success ? parsed.data : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
