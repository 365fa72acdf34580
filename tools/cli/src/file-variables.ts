import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { CliError } from './exit-codes.js';

/**
 * `${{ env "VANTAGEEDGE_VAR_NAME" }}` in a tenant document's string values, decK's syntax: secrets (an
 * origin's credential header, a password in a fixed response) stay out of the file kept in git and
 * come from the CI job's environment. Only variables named with the prefix may be read, so a file
 * cannot copy the CLI's own token ($VANTAGEEDGE_TOKEN) or anything else of the environment into a
 * tenant's config. The value replaces the reference inside the already parsed string: quotes, line
 * breaks or `: ` in it stay text and never change the document's structure. The route policies'
 * `${client_ip}` templates have one brace and are left as they are.
 */

export const FILE_VARIABLE_PREFIX = 'VANTAGEEDGE_VAR_';

/** A variable a document read, and the value it was given. */
export interface FileVariable {
  name: string;
  value: string;
}

/** Where a reference begins: whatever begins so must be a whole reference, never sent as text. */
const REFERENCE_START = /\$\{\{\s*env\b/g;
const REFERENCE = /\$\{\{\s*env\s+"([^"]*)"\s*\}\}/y;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SYNTAX = `\${{ env "${FILE_VARIABLE_PREFIX}NAME" }}`;

/** Stops the reading of the file at `node`, in the value at `path`. */
export type Refuse = (node: Node, path: readonly (string | number)[], problem: string) => never;

const startsReference = (text: string): boolean => text.search(REFERENCE_START) !== -1;

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

/**
 * Replaces every reference in the string values under `root` (a parsed YAML document's contents) with
 * its variable's value, in place; answers the variables read. A reference in a key is refused.
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
        const key = isScalar(pair.key) ? pair.key.value : undefined;
        if (typeof key === 'string' && startsReference(key))
          refuse(pair.key as Node, path, 'a key may not read a variable, only a value may');
        walk(pair.value, [...path, String(key ?? '')]);
      }
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) walk(item, [...path, index]);
    } else if (isScalar(node) && typeof node.value === 'string' && startsReference(node.value)) {
      node.value = substituted(node.value, env, read, (problem) => refuse(node, path, problem));
    }
  };
  walk(root, []);
  return [...read].map(([name, value]) => ({ name, value }));
}

/** Values shorter than this are not masked: `<$…>` in place of every "eu" would garble the plan. */
const SHORTEST_MASKED = 4;

/**
 * `value` (an answer of the admin API) with each variable's value written `<$NAME>`, in every string
 * at any depth: a plan printed in a CI log names the secret, never shows it.
 */
export function maskFileVariables<Value>(value: Value, variables: readonly FileVariable[]): Value {
  const masked = variables
    .filter((variable) => variable.value.length >= SHORTEST_MASKED)
    .sort((a, b) => b.value.length - a.value.length);
  if (masked.length === 0) return value;
  const mask = (item: unknown): unknown => {
    if (typeof item === 'string')
      return masked.reduce((text, { name, value }) => text.replaceAll(value, `<$${name}>`), item);
    if (Array.isArray(item)) return item.map(mask);
    if (typeof item === 'object' && item !== null)
      return Object.fromEntries(Object.entries(item).map(([key, member]) => [key, mask(member)]));
    return item;
  };
  return mask(value) as Value;
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
