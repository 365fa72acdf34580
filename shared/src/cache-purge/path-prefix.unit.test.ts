import { describe, expect, it } from 'vitest';
import { PATH_TAG_MAX_DEPTH, parsePathPrefix, pathTags } from './path-prefix.js';

const tagOf = (prefix: string) => {
  const parsed = parsePathPrefix(prefix);
  if (!parsed.ok) throw new Error(parsed.issue);
  return parsed.tag;
};

describe('path tags and purge prefixes', () => {
  it('a response is tagged with every ancestor segment, so a prefix purge reaches it and nothing beside it', () => {
    const tags = pathTags('/products/a/b');
    expect(tags).toHaveLength(3);
    expect(tags).toContain(tagOf('/products/'));
    expect(tags).toContain(tagOf('/products'));
    expect(tags).toContain(tagOf('/products/a'));
    expect(tags).toContain(tagOf('/products/a/b'));
    expect(pathTags('/productsx')).not.toContain(tagOf('/products'));
    expect(pathTags('/other/products')).not.toContain(tagOf('/products'));
    expect(pathTags('/products/')).toEqual([tagOf('/products')]);
  });

  it('path tags never look like a tag an origin sends or an admin purges (no whitespace there)', () => {
    for (const tag of pathTags('/a/b')) expect(tag).toMatch(/\s/);
  });

  it(`paths deeper than ${PATH_TAG_MAX_DEPTH} segments are tagged down to that depth; deeper prefixes are refused`, () => {
    const deep = '/1/2/3/4/5/6/7/8/9/10';
    expect(pathTags(deep)).toHaveLength(PATH_TAG_MAX_DEPTH);
    expect(pathTags(deep)).toContain(tagOf('/1/2/3/4/5/6/7/8'));
    expect(parsePathPrefix('/1/2/3/4/5/6/7/8/9')).toMatchObject({ ok: false });
  });

  it('normalises escapes as the router does', () => {
    expect(parsePathPrefix('/%70roducts/%c3%a9')).toMatchObject({ ok: true, prefix: '/products/%C3%A9' });
    expect(parsePathPrefix('/products/é')).toMatchObject({ ok: true, prefix: '/products/%C3%A9' });
    expect(tagOf('/products/é')).toBe(pathTags('/products/%C3%A9')[1]);
  });

  it('refuses what is not a path prefix', () => {
    for (const bad of [
      'products/',
      '/',
      '//',
      '/a//b',
      '/a/../b',
      '/a/./b',
      '/a/%2E%2E',
      '/a?x=1',
      '/a%2Fb',
      '/a%zz',
      '/a b',
      '/a\\b',
    ]) {
      expect(parsePathPrefix(bad), bad).toMatchObject({ ok: false, issue: expect.any(String) });
    }
  });
});
