import { describe, expect, it } from 'vitest';
import {
  CACHE_TAGS_MAX,
  encodePurgeMessage,
  generationKey,
  parseGenerations,
  parsePurgeMessage,
  purgeChannel,
  tagPurgeMessages,
  tenantKeyspace,
} from './purge-protocol.js';

describe('cache purge protocol', () => {
  it('names the keyspace, the generation hash and the channel under the key prefix', () => {
    expect(tenantKeyspace('p:', 't1')).toBe('p:c:{t1}:');
    expect(generationKey('p:', 't1')).toBe('p:c:{t1}:gen');
    expect(purgeChannel('p:')).toBe('p:vantageedge:cache:purge');
    expect(purgeChannel('')).toBe('vantageedge:cache:purge');
  });

  it('round-trips every message kind and refuses malformed ones', () => {
    for (const message of [
      { kind: 'route', tenantId: 't', routeId: 'r', generation: 3 },
      { kind: 'tenant', tenantId: 't', generation: 1 },
      { kind: 'path', pathIndexKey: 'c:{t}:0:r:0:abc:idx' },
    ] as const)
      expect(parsePurgeMessage(encodePurgeMessage(message))).toEqual(message);
    for (const text of [
      '',
      'not json',
      '{}',
      '{"kind":"route","tenantId":"t"}',
      '{"kind":"tenant","tenantId":"t","generation":0}',
    ])
      expect(parsePurgeMessage(text)).toBeNull();
  });

  it('splits a tag purge into messages every replica takes', () => {
    const tags = Array.from({ length: CACHE_TAGS_MAX * 2 + 1 }, (_, i) => `t${i}`);
    const parts = tagPurgeMessages({ kind: 'tags', tenantId: 't1', tags, softAt: 5 });
    expect(parts.map((part) => part.tags.length)).toEqual([CACHE_TAGS_MAX, CACHE_TAGS_MAX, 1]);
    expect(parts.flatMap((part) => part.tags)).toEqual(tags);
    for (const part of parts) expect(parsePurgeMessage(encodePurgeMessage(part))).toEqual(part);
  });

  it('reads generations from the hash, ignoring fields that are not counts', () => {
    const generations = parseGenerations({ _tenant: '2', r1: '5', r2: 'x' });
    expect(generations.tenant).toBe(2);
    expect([...generations.routes]).toEqual([
      ['r1', 5],
      ['r2', 0],
    ]);
    expect(parseGenerations({}).tenant).toBe(0);
  });
});
