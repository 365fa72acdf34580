import { open } from 'node:fs/promises';
import { isScalar, LineCounter, type ParsedNode, parseDocument, visit, YAMLParseError } from 'yaml';
import { sizeText } from './answer-reader.js';
import { CliError, EXIT } from './exit-codes.js';
import { type FileVariable, substituteFileVariables } from './file-variables.js';

/** A tenant document as sent, and the variables its values read (file-variables.ts). */
export interface TenantFile {
  document: Record<string, unknown>;
  variables: FileVariable[];
}

/**
 * A tenant document from a YAML (or JSON: YAML is a superset) file, or stdin for `-f -`, with its
 * `${{ env "VANTAGEEDGE_VAR_…" }}` references replaced from `env`. Only the syntax is checked here; the
 * admin API validates the content with the schema it publishes and names every wrong field.
 */
export async function readDocument(
  file: string,
  stdin: () => Promise<string>,
  env: NodeJS.ProcessEnv = {},
  maxBytes: number = MAX_DOCUMENT_FILE_BYTES,
): Promise<TenantFile> {
  let text: string | undefined;
  try {
    text = file === '-' ? await stdin() : await readBounded(file, maxBytes);
  } catch (error) {
    throw new CliError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
  }
  if (text === undefined) {
    throw new CliError(
      EXIT.usage,
      `${file} is larger than ${sizeText(maxBytes)}, the most the CLI reads of a document file`,
    );
  }
  const { value, variables } = parsedDocument(file, text, env);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(
      EXIT.usage,
      `${file} must hold one tenant document (a mapping with tenant, origins, routes)`,
    );
  }
  return { document: value as Record<string, unknown>, variables };
}

/**
 * The most read of a document file: 16 times the admin API's default document limit (4 MiB), room for
 * a YAML file's comments and indentation. A file someone else wrote (or a link to /dev/zero in a
 * repository) cannot make the CLI buffer and parse without end.
 */
export const MAX_DOCUMENT_FILE_BYTES = 64 * 1024 * 1024;

/** The file as UTF-8 text, or undefined when it holds more than `maxBytes` (read no further). */
async function readBounded(file: string, maxBytes: number): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1024 * 1024, maxBytes + 1 - bytes));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      bytes += bytesRead;
      if (bytes > maxBytes) return undefined;
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The JSON member name a mapping key becomes when the document is sent: YAML tells `1`, `true` and `~`
 * from `"1"`, `"true"` and `""`, the JSON object does not.
 */
const memberName = (key: ParsedNode): unknown =>
  isScalar(key) ? (key.value === null ? '' : String(key.value)) : key;

/** Two keys of one mapping that would be one member of the JSON sent, the last one's value kept. */
const sameMemberName = (a: ParsedNode, b: ParsedNode): boolean => memberName(a) === memberName(b);

function parsedDocument(
  file: string,
  text: string,
  env: NodeJS.ProcessEnv,
): { value: unknown; variables: FileVariable[] } {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: sameMemberName, lineCounter });
  const [error] = document.errors;
  if (error !== undefined) {
    const where = error instanceof YAMLParseError ? error.message.split('\n')[0] : (error as Error).message;
    throw new CliError(EXIT.usage, `${file} is not valid YAML: ${where}`);
  }
  const lineOf = (node: unknown) =>
    lineCounter.linePos((node as { range?: [number, number, number] }).range?.[0] ?? 0).line;
  // An alias or a collection as a key has no JSON member name of its own: it would be spelled out
  // (`[ a ]`), and two of them compared only once spelled.
  visit(document, {
    Pair(_, pair) {
      if (pair.key === null || isScalar(pair.key)) return;
      const line = lineOf(pair.key);
      throw new CliError(
        EXIT.usage,
        `${file} is not a tenant document: the key at line ${line} is an alias or a collection, not a name`,
      );
    },
  });
  const variables = substituteFileVariables(document.contents, env, (node, path, problem) => {
    const field = path.length === 0 ? '' : ` (${path.join('.')})`;
    throw new CliError(EXIT.usage, `${file}, line ${lineOf(node)}${field}: ${problem}`);
  });
  return { value: plainValue(file, document), variables };
}

/**
 * The most alias resolutions the YAML library allows for a document, weighed by the aliases inside
 * what each names (its default): a few anchors reused stay fine; nested aliases that would expand a
 * small file into millions of values ("billion laughs") are refused before anything is built or sent.
 */
const MAX_ALIAS_COUNT = 100;

function plainValue(file: string, document: ReturnType<typeof parseDocument>): unknown {
  try {
    return document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    if (!(error instanceof ReferenceError && /excessive alias count/i.test(error.message))) throw error;
    throw new CliError(
      EXIT.usage,
      `${file} is not a tenant document: its aliases expand to too many values (anchors reused inside anchors); write the values out`,
    );
  }
}

/** The tenant a document names: its `tenant.id`, else its `tenant.subdomain`. */
export function tenantRefOf(document: Record<string, unknown>): string | undefined {
  const tenant = document['tenant'];
  if (typeof tenant !== 'object' || tenant === null) return undefined;
  const { id, subdomain } = tenant as { id?: unknown; subdomain?: unknown };
  if (typeof id === 'string') return id;
  return typeof subdomain === 'string' ? subdomain : undefined;
}
