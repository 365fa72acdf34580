import { isMap, isScalar, isSeq, type Node, type Scalar } from 'yaml';
import { CliError } from './exit-codes.js';

/**
 * `${{ env "VANTAGEEDGE_VAR_NAME" }}` in a tenant document's string values, decK's syntax: secrets (an
 * origin's credential header, a password in a fixed response) stay out of the file kept in git and
 * come from the CI job's environment. Only variables named with the prefix may be read, so a file
 * cannot copy the CLI's own token ($VANTAGEEDGE_TOKEN) or anything else of the environment into a
 * tenant's config. The value replaces the reference inside the already parsed string: quotes, line
 * breaks or `: ` in it stay text and never change the document's structure. The route policies'
 * `${client_ip}` templates have one brace and are left as they are.
 *
 * `$${{` is the text `${{` (Terraform's escape): `dump` writes every `${{` of a stored value so, and the
 * value read back is the one stored, never a reference that a tenant's admin typed as text and the CI
 * job that applies the dump would fill with one of its secrets.
 */

export const FILE_VARIABLE_PREFIX = 'VANTAGEEDGE_VAR_';

/** A variable a document read, and the value it was given. */
export interface FileVariable {
  name: string;
  value: string;
}

const OPENING = '${{';
const ESCAPED_OPENING = '$${{';
/**
 * Where a reference begins (whatever begins so must be a whole reference, never sent as text), or an
 * escaped opening, read left to right: `$$${{` is `$` and an escaped `${{`.
 */
const REFERENCE_START = /\$\$\{\{|\$\{\{\s*env\b/g;
const REFERENCE = /\$\{\{\s*env\s+"([^"]*)"\s*\}\}/y;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SYNTAX = `\${{ env "${FILE_VARIABLE_PREFIX}NAME" }}`;

/** Stops the reading of the file at `node`, in the value at `path`. */
export type Refuse = (node: Node, path: readonly (string | number)[], problem: string) => never;

const hasOpening = (text: string): boolean => text.includes(OPENING);

function variableValue(name: string, env: NodeJS.ProcessEnv, problem: (text: string) => never): string {
  if (!name.startsWith(FILE_VARIABLE_PREFIX))
    problem(
      `$${name} may not be read: a file reads only variables whose names start with ${FILE_VARIABLE_PREFIX}`,
    );
  const value = env[name];
  if (value === undefined) problem(`$${name} is not set`);
  // A CI secret that is not defined is often passed on as an empty variable: never an empty credential.
  if (value === '') problem(`$${name} is empty`);
  return value;
}

function substituted(
  text: string,
  env: NodeJS.ProcessEnv,
  read: Map<string, string>,
  problem: (text: string) => never,
): string {
  let result = '';
  let done = 0;
  for (const start of text.matchAll(REFERENCE_START)) {
    if (start.index < done) continue;
    if (start[0] === ESCAPED_OPENING) {
      result += text.slice(done, start.index) + OPENING;
      done = start.index + ESCAPED_OPENING.length;
      continue;
    }
    REFERENCE.lastIndex = start.index;
    const reference = REFERENCE.exec(text);
    const name = reference?.[1] ?? '';
    if (reference === null || !VARIABLE_NAME.test(name)) {
      const end = text.indexOf('}}', start.index);
      const written = text.slice(start.index, end === -1 ? undefined : end + 2).slice(0, 60);
      problem(`${JSON.stringify(written)} is not a variable reference: write ${SYNTAX}`);
    }
    const value = variableValue(name, env, problem);
    read.set(name, value);
    result += text.slice(done, start.index) + value;
    done = REFERENCE.lastIndex;
  }
  return result + text.slice(done);
}

/** `text` with its escaped openings read back, or undefined when it holds a reference. */
function withoutReferences(text: string): string | undefined {
  let result = '';
  let done = 0;
  for (const start of text.matchAll(REFERENCE_START)) {
    if (start[0] !== ESCAPED_OPENING) return undefined;
    result += text.slice(done, start.index) + OPENING;
    done = start.index + ESCAPED_OPENING.length;
  }
  return result + text.slice(done);
}

/**
 * Replaces every reference in the string values under `root` (a parsed YAML document's contents) with
 * its variable's value, and every escaped opening with `${{`, in place; answers the variables read. A
 * reference in a key is refused.
 */
export function substituteFileVariables(
  root: unknown,
  env: NodeJS.ProcessEnv,
  refuse: Refuse,
): FileVariable[] {
  const read = new Map<string, string>();
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        let key = isScalar(pair.key) ? pair.key.value : undefined;
        if (typeof key === 'string' && hasOpening(key)) {
          const text = withoutReferences(key);
          if (text === undefined)
            refuse(pair.key as Node, path, 'a key may not read a variable, only a value may');
          key = (pair.key as Scalar).value = text;
        }
        walk(pair.value, [...path, String(key ?? '')]);
      }
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) walk(item, [...path, index]);
    } else if (isScalar(node) && typeof node.value === 'string' && hasOpening(node.value)) {
      node.value = substituted(node.value, env, read, (problem) => refuse(node, path, problem));
    }
  };
  walk(root, []);
  return [...read].map(([name, value]) => ({ name, value }));
}

/**
 * `document` as `dump` writes it: every `${{` of its strings, keys included, escaped, so that reading
 * the file back gives the stored text, never a reference.
 */
export function escapedForFile<Value>(document: Value): Value {
  return mapStrings(
    document,
    (text) => (hasOpening(text) ? text.replaceAll(OPENING, () => ESCAPED_OPENING) : text),
    true,
  );
}

/** `value` with `change` applied to every string at any depth (object keys too when `keys`). */
function mapStrings<Value>(value: Value, change: (text: string) => string, keys = false): Value {
  const map = (item: unknown): unknown => {
    if (typeof item === 'string') return change(item);
    if (Array.isArray(item)) return item.map(map);
    if (typeof item === 'object' && item !== null)
      return Object.fromEntries(
        Object.entries(item).map(([key, member]) => [keys ? change(key) : key, map(member)]),
      );
    return item;
  };
  return map(value) as Value;
}

/** Values shorter than this are not masked: `<$…>` in place of every "eu" would garble the plan. */
const SHORTEST_MASKED = 4;

/**
 * `value` (an answer of the admin API) with each variable's value written `<$NAME>`, in every string
 * at any depth: a plan printed in a CI log names the secret, never shows it.
 */
export function maskFileVariables<Value>(value: Value, variables: readonly FileVariable[]): Value {
  const masks = variables
    .filter((variable) => variable.value.length >= SHORTEST_MASKED)
    .sort((a, b) => b.value.length - a.value.length)
    .map(({ name, value }) => ({ spellings: spellingsOf(value), masked: `<$${name}>` }));
  if (masks.length === 0) return value;
  return mapStrings(value, (text) =>
    masks.reduce((shown, { spellings, masked }) => shown.replace(spellings, () => masked), text),
  );
}

/**
 * Every way the admin API may write a value back: as sent, in other letters' case (host names, header
 * and parameter names and CORS origins come back lower-cased), and JSON-escaped (quoted in a message).
 */
function spellingsOf(value: string): RegExp {
  const forms = new Set([value, JSON.stringify(value).slice(1, -1)]);
  return new RegExp([...forms].map((form) => form.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('|'), 'gi');
}

/** `error` with the variables' values masked: the admin API's messages may quote a value refused. */
export function maskedError(error: unknown, variables: readonly FileVariable[]): unknown {
  if (!(error instanceof CliError) || variables.length === 0) return error;
  return new CliError(
    error.exitCode,
    maskFileVariables(error.message, variables),
    maskFileVariables(error.details, variables),
  );
}
