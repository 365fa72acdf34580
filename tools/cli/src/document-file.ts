import { readFile } from 'node:fs/promises';
import { parse, YAMLParseError } from 'yaml';
import { CliError, EXIT } from './exit-codes.js';

/**
 * A tenant document from a YAML (or JSON: YAML is a superset) file, or stdin for `-f -`. Only the
 * syntax is checked here; the admin API validates the content with the schema it publishes and names
 * every wrong field.
 */
export async function readDocument(
  file: string,
  stdin: () => Promise<string>,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await stdin() : await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    const where = error instanceof YAMLParseError ? error.message.split('\n')[0] : (error as Error).message;
    throw new CliError(EXIT.usage, `${file} is not valid YAML: ${where}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(
      EXIT.usage,
      `${file} must hold one tenant document (a mapping with tenant, origins, routes)`,
    );
  }
  return value as Record<string, unknown>;
}

/** The tenant a document names: its `tenant.id`, else its `tenant.subdomain`. */
export function tenantRefOf(document: Record<string, unknown>): string | undefined {
  const tenant = document['tenant'];
  if (typeof tenant !== 'object' || tenant === null) return undefined;
  const { id, subdomain } = tenant as { id?: unknown; subdomain?: unknown };
  if (typeof id === 'string') return id;
  return typeof subdomain === 'string' ? subdomain : undefined;
}
