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
