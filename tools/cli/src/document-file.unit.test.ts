import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDocument } from './document-file.js';
import { CliError, EXIT } from './exit-codes.js';

const fromStdin = async (text: string) => (await readDocument('-', async () => text)).document;

async function refusal(text: string): Promise<CliError> {
  const error = await fromStdin(text).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(CliError);
  expect((error as CliError).exitCode).toBe(EXIT.usage);
  return error as CliError;
}

/**
 * The document is sent as JSON: two keys of one mapping that become the same member name would leave
 * only the last one's value, silently. JSON and YAML files with a key named twice are refused, also
 * when the two keys differ only in how they are written (`"a"` and `"\u0061"`, `1` and `"1"`).
 */
describe('a tenant document naming a key twice is refused before anything is sent', () => {
  it.each([
    ['JSON, a top-level member', '{"tenant":{"subdomain":"a"},"tenant":{"subdomain":"b"}}'],
    ['JSON, a member of a route', '{"routes":[{"path_pattern":"/a/*","path_pattern":"/b/*"}]}'],
    ['JSON, names differing only by an escape', '{"routes":[],"\\u0072outes":[]}'],
    ['YAML, a key written twice', 'routes: []\nroutes: []\n'],
    ['YAML, a key quoted once and plain once', 'routes: []\n"routes": []\n'],
  ])('%s', async (_label, text) => {
    expect((await refusal(text)).message).toMatch(/^- is not valid YAML: Map keys must be unique/);
  });

  it.each([
    ['a number and the same digits quoted', 'request_headers:\n  set:\n    1: a\n    "1": b\n'],
    ['true and "true"', 'query:\n  add:\n    true: a\n    "true": b\n'],
    ['null and the empty string', 'query:\n  add:\n    ~: a\n    "": b\n'],
    ['a number written two ways', 'query:\n  add:\n    1.5: a\n    "1.5": b\n'],
  ])('YAML keys that differ as YAML but name the same JSON member: %s', async (_label, text) => {
    expect((await refusal(text)).message).toMatch(/^- is not valid YAML: Map keys must be unique/);
  });

  it.each([
    ['an alias', 'tenant: {subdomain: &name shop}\nquery:\n  add:\n    *name : a\n    shop: b\n'],
    ['a sequence', 'query:\n  add:\n    ? [a]\n    : 1\n    ? [a]\n    : 2\n'],
  ])('YAML keys that are not plain values: %s', async (_label, text) => {
    expect((await refusal(text)).message).toMatch(/^- is not a tenant document: the key at line \d+/);
  });

  it('reads the same documents with each key written once', async () => {
    expect(await fromStdin('{"routes":[{"path_pattern":"/a/*"}],"tenant":{"subdomain":"a"}}')).toEqual({
      routes: [{ path_pattern: '/a/*' }],
      tenant: { subdomain: 'a' },
    });
    expect(await fromStdin('query:\n  add:\n    1: a\n    "2": b\n    true: c\n')).toEqual({
      query: { add: { '1': 'a', '2': 'b', true: 'c' } },
    });
  });
});

/**
 * A file another member wrote is read before anything is sent: aliases that would expand into
 * millions of values ("billion laughs") and keys named `__proto__` are a usage error or plain data,
 * never a crash of the CLI or a change to the objects it works with.
 */
describe('a hostile tenant document', () => {
  it('refuses aliases that expand without end, naming the file, without a stack trace', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [index, name] of [...'bcdefg'].entries()) {
      const previous = 'abcdefg'[index];
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(', ')}]`);
    }
    const error = await refusal(`${levels.join('\n')}\n`);
    expect(error.message).toMatch(/^- is not a tenant document: its aliases expand to too many values/);
    expect(error.message).not.toContain('    at ');
  });

  it('keeps a few aliases as YAML means them', async () => {
    expect(await fromStdin('x: &x {a: 1}\ny: [*x, *x]\n')).toEqual({ x: { a: 1 }, y: [{ a: 1 }, { a: 1 }] });
  });

  it('reads a `__proto__` key as a member like any other, changing no object', async () => {
    const document = await fromStdin('__proto__:\n  polluted: yes\ntenant:\n  subdomain: acme\n');
    expect(Object.getPrototypeOf(document)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(JSON.parse(JSON.stringify(document))).toEqual(
      JSON.parse('{"__proto__":{"polluted":"yes"},"tenant":{"subdomain":"acme"}}'),
    );
  });
});

describe('a document file is read up to a bound', () => {
  async function inFolder<T>(work: (folder: string) => Promise<T>): Promise<T> {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-document-'));
    try {
      return await work(folder);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }
  const refused = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );

  it('refuses a file larger than the bound, naming it and the bound', async () => {
    await inFolder(async (folder) => {
      const file = path.join(folder, 'tenant.yaml');
      await writeFile(file, `tenant:\n  name: "${'x'.repeat(2000)}"\n`);
      const error = await refused(readDocument(file, async () => '', {}, 1024));
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(EXIT.usage);
      expect((error as CliError).message).toBe(
        `${file} is larger than 1024 bytes, the most the CLI reads of a document file`,
      );
      // At the bound, the same file is read.
      expect((await readDocument(file, async () => '', {}, 4096)).document).toEqual({
        tenant: { name: 'x'.repeat(2000) },
      });
    });
  });

  it('stops reading a link to an endless file (/dev/zero committed as tenant.yaml) at the bound', async () => {
    await inFolder(async (folder) => {
      const file = path.join(folder, 'tenant.yaml');
      await symlink('/dev/zero', file);
      const error = await refused(readDocument(file, async () => ''));
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).message).toBe(
        `${file} is larger than 64 MiB, the most the CLI reads of a document file`,
      );
    });
  });
});
