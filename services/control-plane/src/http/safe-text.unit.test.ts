import { describe, expect, it } from 'vitest';
import { ROUTE_POLICY_EXAMPLES } from './route-policy-examples.js';
import { MAX_BODY_DEPTH, unsafeTextIn } from './safe-text.js';

/** `depth` arrays or objects nested in one another around `leaf`. */
const nestedArrays = (depth: number, leaf: unknown = 1): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};
const nestedObjects = (depth: number, leaf: unknown = 1): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};

describe('unsafeTextIn', () => {
  it('names every unsafe string and key by its dotted path, in document order', () => {
    const body = JSON.parse('{"a":"ok","b":["x","\\u0000"],"c":{"\\ud800":1,"d":"\\udc00"}}');
    expect(unsafeTextIn(body, '')).toEqual([
      { field: 'b.1', issue: 'must not contain U+0000 or unpaired surrogates' },
      { field: 'c', issue: 'has a key with U+0000 or unpaired surrogates' },
      { field: 'c.d', issue: 'must not contain U+0000 or unpaired surrogates' },
    ]);
    expect(unsafeTextIn({ name: 'fine', list: [1, null, true, { x: 'y' }] }, '')).toEqual([]);
  });

  it('stops at ten problems', () => {
    expect(unsafeTextIn(Array(50).fill('\u0000'), '')).toHaveLength(10);
  });

  it.each([
    ['30,000 nested arrays', () => JSON.parse(`${'['.repeat(30_000)}${']'.repeat(30_000)}`)],
    ['10,000 nested objects', () => JSON.parse(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`)],
    ['200,000 nested arrays', () => JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`)],
  ])('refuses %s as a problem of the body instead of overflowing the stack', (_label, build) => {
    const body = build();
    expect(() => unsafeTextIn(body, '')).not.toThrow();
    expect(unsafeTextIn(body, '')).toEqual([
      { field: 'body', issue: `must not nest arrays and objects more than ${MAX_BODY_DEPTH} levels deep` },
    ]);
  });

  it(`accepts ${MAX_BODY_DEPTH} levels and refuses one more`, () => {
    expect(unsafeTextIn(nestedArrays(MAX_BODY_DEPTH), '')).toEqual([]);
    expect(unsafeTextIn(nestedObjects(MAX_BODY_DEPTH, 'x'), '')).toEqual([]);
    expect(unsafeTextIn(nestedArrays(MAX_BODY_DEPTH + 1), '')).toHaveLength(1);
    expect(unsafeTextIn(nestedObjects(MAX_BODY_DEPTH + 1), '')).toHaveLength(1);
    // Scalars at the deepest allowed level are still checked.
    expect(unsafeTextIn(nestedObjects(MAX_BODY_DEPTH, '\u0000'), '')).toEqual([
      {
        field: Array(MAX_BODY_DEPTH).fill('a').join('.'),
        issue: 'must not contain U+0000 or unpaired surrogates',
      },
    ]);
  });

  it('holds no value but those on the path to the one it checks (a 4 MiB body has millions)', () => {
    // Which array items and object keys the walk has read, in order: each item's contents are checked
    // before the next item is read, so nothing is queued per value of the body.
    const reads: string[] = [];
    const item = (index: number) =>
      new Proxy(
        { name: index === 2 ? '\u0000' : 'ok' },
        {
          ownKeys: (target) => {
            reads.push(`keys of ${index}`);
            return Reflect.ownKeys(target);
          },
        },
      );
    const list = new Proxy([item(0), item(1), item(2)], {
      get: (target, key, receiver) => {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads.push(`item ${key}`);
        return Reflect.get(target, key, receiver);
      },
    });
    expect(unsafeTextIn({ routes: list }, '')).toEqual([
      { field: 'routes.2.name', issue: 'must not contain U+0000 or unpaired surrogates' },
    ]);
    expect(reads).toEqual(['item 0', 'keys of 0', 'item 1', 'keys of 1', 'item 2', 'keys of 2']);
  });

  it('leaves ample room for a whole tenant document', () => {
    const depth = (value: unknown): number =>
      typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depth)) : 0;
    // A config document holding a route with every policy (the OpenAPI examples), as apply gets it.
    const document = {
      format: 'vantageedge/v1',
      tenant: { name: 'T', settings: { rate_limit: { requests_per_second: 10 } } },
      origins: [{ name: 'o', url: 'https://o.example.com' }],
      routes: Object.values(ROUTE_POLICY_EXAMPLES).map((example) => example.value),
    };
    expect(depth(document)).toBeLessThan(MAX_BODY_DEPTH / 4);
    expect(unsafeTextIn(document, '')).toEqual([]);
  });
});
