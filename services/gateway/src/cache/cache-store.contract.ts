import {
  CACHE_SOFT_PURGED_TAGS_MAX,
  CACHE_TAG_MAX_LENGTH,
  CACHE_TAGS_MAX,
  type CachePurgeMessage,
  encodePurgeMessage,
  parsePurgeMessage,
  SoftPurgedTagsFull,
  tagIndexKey,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { describe, expect, it } from 'vitest';
import type { CacheEntry } from './cache-entry.js';
import type { CacheStore, EvictionReason } from './cache-store.js';
import { testCacheEntry } from './testing/test-cache-entry.js';

/** One behavioural suite for every CacheStore (memory and Redis). */
export interface CacheStoreUnderTest {
  store: CacheStore;
  /** A tenant id no other test uses (keys live under `c:{<tenant>}:`). */
  tenantId: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function entry(body: string | Buffer, extra: Partial<CacheEntry> = {}): CacheEntry {
  return testCacheEntry({
    headers: [
      ['content-type', 'text/plain'],
      ['link', ['<a>; rel=a', '<b>; rel=b']],
    ],
    body: typeof body === 'string' ? Buffer.from(body) : body,
    storedAt: 1_700_000_000_000,
    ...extra,
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await sleep(20);
}

/**
 * Subscribes and resolves once the subscription delivers (a probe path message came back), with the
 * probe removed from `messages`: purges sent before a subscription is established are not its to see
 * (a Cluster client must discover the slots before it can subscribe).
 */
async function subscribed(
  store: CacheStore,
  messages: CachePurgeMessage[],
  tenantId?: string,
): Promise<void> {
  // Other tests' purges share the channel, and a Redis Cluster may deliver one after this subscription
  // is up: only this test's tenant (and the probe) count.
  store.subscribe({
    onPurge: (message) => {
      if (tenantId === undefined || message.kind === 'path' || message.tenantId === tenantId)
        messages.push(message);
    },
    onResync: () => {},
  });
  const probe = `c:{probe-${Math.random().toString(36).slice(2)}}:idx`;
  const arrived = () => messages.some((m) => m.kind === 'path' && m.pathIndexKey === probe);
  for (let i = 0; i < 100 && !arrived(); i++) {
    await store.invalidatePath(probe);
    await sleep(50);
  }
  expect(arrived(), 'the purge subscription never delivered').toBe(true);
  messages.splice(
    0,
    messages.length,
    ...messages.filter((m) => m.kind !== 'path' || m.pathIndexKey !== probe),
  );
}

/** What a contract test may ask of the store it is given. */
export interface CacheStoreSetup {
  /** The default byte bound of each tenant's entries. */
  tenantMaxBytes?: number;
  onEvicted?: (reason: EvictionReason, count: number) => void;
}

export function describeCacheStoreContract(
  name: string,
  setup: (options?: CacheStoreSetup) => Promise<CacheStoreUnderTest>,
): void {
  describe(`CacheStore contract: ${name}`, () => {
    it('stores a response (binary body, repeated headers) and forgets it after its TTL', async () => {
      const { store, tenantId } = await setup();
      const key = `c:{${tenantId}}:0:r:0:p:v`;
      expect(await store.get(key)).toBeNull();
      const stored = entry(Buffer.from([0, 255, 10, 13]), { status: 203, staleIfErrorMs: 5 });
      await store.putResponse({
        key,
        entry: stored,
        ttlMs: 300,
        pathIndexKey: `c:{${tenantId}}:0:r:0:p:idx`,
      });
      expect(await store.get(key)).toEqual(stored);
      await sleep(450);
      expect(await store.get(key)).toBeNull();
    });

    it('stores variants behind a Vary marker at the URL key; at the cap the least recently used makes room', async () => {
      const replaced: number[] = [];
      const { store, tenantId } = await setup({
        onEvicted: (reason, count) => {
          if (reason === 'vary_cap') replaced.push(count);
        },
      });
      const urlKey = `c:{${tenantId}}:0:r:0:p:url`;
      const pathIndexKey = `c:{${tenantId}}:0:r:0:p:idx`;
      const variant = (name: string, ttlMs = 60_000, url = urlKey) => ({
        key: `${url}:${name}`,
        urlKey: url,
        entry: entry(`body ${name}`, { varyOn: ['accept-language'] }),
        ttlMs,
        pathIndexKey,
        maxVariants: 2,
      });
      expect(await store.putVariant(variant('fr'))).toBe('stored');
      expect(await store.get(urlKey)).toEqual({ kind: 'vary', varyOn: ['accept-language'] });
      expect(await store.putVariant(variant('en'))).toBe('stored');
      // fr is read after en was stored: en is the least recently used, and a third variant replaces it.
      await sleep(2);
      expect((await store.get(`${urlKey}:fr`))?.kind).toBe('response');
      expect(await store.putVariant(variant('de'))).toBe('stored');
      expect(await store.get(`${urlKey}:en`)).toBeNull();
      expect((await store.get(`${urlKey}:fr`))?.kind).toBe('response');
      expect((await store.get(`${urlKey}:de`))?.kind).toBe('response');
      expect(replaced).toEqual([1]);
      // Storing an existing variant again is not a new variant: nothing makes room.
      expect(await store.putVariant(variant('fr'))).toBe('stored');
      expect((await store.get(`${urlKey}:de`))?.kind).toBe('response');
      expect(replaced).toEqual([1]);
      expect(await store.get(urlKey)).toEqual({ kind: 'vary', varyOn: ['accept-language'] });

      // A variant that expired is forgotten before a live one makes room; the marker outlives it.
      const other = `c:{${tenantId}}:0:r:0:p:other`;
      expect(await store.putVariant(variant('a', 200, other))).toBe('stored');
      expect(await store.putVariant(variant('b', 60_000, other))).toBe('stored');
      await sleep(350);
      expect(await store.putVariant(variant('c', 60_000, other))).toBe('stored');
      expect((await store.get(`${other}:b`))?.kind).toBe('response');
      expect((await store.get(`${other}:c`))?.kind).toBe('response');
      expect(replaced).toEqual([1]);

      // The URL stops varying: its response replaces the marker.
      await store.putResponse({ key: urlKey, entry: entry('plain'), ttlMs: 60_000, pathIndexKey });
      expect((await store.get(urlKey))?.kind).toBe('response');
    });

    it('at the cap a variant stored again (refreshed) counts as recently used, as one read does', async () => {
      const { store, tenantId } = await setup();
      const urlKey = `c:{${tenantId}}:0:r:0:p:refreshed`;
      const pathIndexKey = `c:{${tenantId}}:0:r:0:p:idx`;
      const variant = (name: string) => ({
        key: `${urlKey}:${name}`,
        urlKey,
        entry: entry(`body ${name}`, { varyOn: ['accept-language'] }),
        ttlMs: 60_000,
        pathIndexKey,
        maxVariants: 2,
      });
      expect(await store.putVariant(variant('fr'))).toBe('stored');
      await sleep(2);
      expect(await store.putVariant(variant('en'))).toBe('stored');
      await sleep(2);
      // fr is revalidated and stored again after en: en is now the least recently used.
      expect(await store.putVariant(variant('fr'))).toBe('stored');
      await sleep(2);
      expect(await store.putVariant(variant('de'))).toBe('stored');
      expect(await store.get(`${urlKey}:en`)).toBeNull();
      expect((await store.get(`${urlKey}:fr`))?.kind).toBe('response');
      expect((await store.get(`${urlKey}:de`))?.kind).toBe('response');
    });

    it('invalidating a path drops all its keys (every query, every variant) and tells subscribers', async () => {
      const { store, tenantId } = await setup();
      const messages: CachePurgeMessage[] = [];
      await subscribed(store, messages);
      const pathIndexKey = `c:{${tenantId}}:0:r:0:doc:idx`;
      const other = `c:{${tenantId}}:0:r:0:other:v`;
      await store.putResponse({
        key: `c:{${tenantId}}:0:r:0:doc:q1`,
        entry: entry('1'),
        ttlMs: 60_000,
        pathIndexKey,
      });
      await store.putVariant({
        key: `c:{${tenantId}}:0:r:0:doc:q2:fr`,
        urlKey: `c:{${tenantId}}:0:r:0:doc:q2`,
        entry: entry('2', { varyOn: ['accept-language'] }),
        ttlMs: 60_000,
        pathIndexKey,
        maxVariants: 4,
      });
      await store.putResponse({
        key: other,
        entry: entry('other'),
        ttlMs: 60_000,
        pathIndexKey: `${other}:idx`,
      });
      await store.invalidatePath(pathIndexKey);
      for (const key of ['doc:q1', 'doc:q2', 'doc:q2:fr'])
        expect(await store.get(`c:{${tenantId}}:0:r:0:${key}`), key).toBeNull();
      expect(await store.get(other)).not.toBeNull();
      await until(() => messages.length > 0);
      expect(messages).toEqual([{ kind: 'path', pathIndexKey }]);
    });

    it("tells every replica to drop its copies of a path's keys, the store keeping its own", async () => {
      const { store, tenantId } = await setup();
      const messages: CachePurgeMessage[] = [];
      await subscribed(store, messages);
      const key = `c:{${tenantId}}:0:r:0:kept:q`;
      const pathIndexKey = `c:{${tenantId}}:0:r:0:kept:idx`;
      await store.putResponse({ key, entry: entry('kept'), ttlMs: 60_000, pathIndexKey });
      await store.dropCopies(pathIndexKey);
      await until(() => messages.length > 0);
      expect(messages).toEqual([{ kind: 'path', pathIndexKey }]);
      expect(await store.get(key)).not.toBeNull();
    });

    it('a write replacing a response is stored only over that very response, checked and written in one step', async () => {
      const { store, tenantId } = await setup();
      const key = `c:{${tenantId}}:0:r:0:mark:v`;
      const pathIndexKey = `c:{${tenantId}}:0:r:0:mark:idx`;
      const compared = entry('version 1', { headers: [['etag', '"v1"']], freshMs: 600_000 });
      const marked = { ...compared, freshMs: 5 };
      const put = (stored: CacheEntry, replacing?: CacheEntry, at = key) =>
        store.putResponse({ key: at, entry: stored, ttlMs: 60_000, pathIndexKey, replacing });
      expect(await put(compared)).toBe('stored');
      // Another replica stored a newer response meanwhile: it stays as it is.
      const newer = entry('version 2', { headers: [['etag', '"v2"']], storedAt: compared.storedAt + 1 });
      expect(await put(newer)).toBe('stored');
      expect(await put(marked, compared)).toBe('changed');
      expect(await store.get(key)).toEqual(newer);
      // One stored at the same moment with other headers is another response too.
      const sameMoment = entry('version 3', { headers: [['etag', '"v3"']] });
      expect(await put(sameMoment)).toBe('stored');
      expect(await put(marked, compared)).toBe('changed');
      expect(await store.get(key)).toEqual(sameMoment);
      // The very response is replaced, whatever its body.
      expect(await put(compared)).toBe('stored');
      expect(await put(marked, { ...compared, body: Buffer.from('another body') })).toBe('stored');
      expect(await store.get(key)).toEqual(marked);
      // None (purged, evicted, expired): nothing is brought back.
      const gone = `c:{${tenantId}}:0:r:0:gone:v`;
      expect(await put(marked, compared, gone)).toBe('changed');
      expect(await store.get(gone)).toBeNull();
    });

    it('a variant write replacing a response needs the URL to vary on the same headers still', async () => {
      const { store, tenantId } = await setup();
      const urlKey = `c:{${tenantId}}:0:r:0:marks:v`;
      const pathIndexKey = `c:{${tenantId}}:0:r:0:marks:idx`;
      const compared = entry('fr 1', { varyOn: ['accept-language'], freshMs: 600_000 });
      const marked = { ...compared, freshMs: 5 };
      const put = (stored: CacheEntry, replacing?: CacheEntry) =>
        store.putVariant({
          key: `${urlKey}:fr`,
          urlKey,
          entry: stored,
          ttlMs: 60_000,
          pathIndexKey,
          maxVariants: 4,
          replacing,
        });
      expect(await put(compared)).toBe('stored');
      expect(await put(marked, compared)).toBe('stored');
      expect(await store.get(`${urlKey}:fr`)).toEqual(marked);
      expect(await put(compared)).toBe('stored');
      // The URL stopped varying: its response stays, and no marker comes back over it.
      const plain = entry('plain');
      await store.putResponse({ key: urlKey, entry: plain, ttlMs: 60_000, pathIndexKey });
      expect(await put(marked, compared)).toBe('changed');
      expect(await store.get(urlKey)).toEqual(plain);
      expect(await store.get(`${urlKey}:fr`)).toEqual(compared);
    });

    it('gives a lease on a key to one holder at a time, until released or expired', async () => {
      const { store, tenantId } = await setup();
      const key = `c:{${tenantId}}:0:r:0:p:v:lease`;
      const token = await store.acquireLease(key, 300);
      expect(token).toEqual(expect.any(String));
      expect(await store.acquireLease(key, 300)).toBeNull();
      // Only its holder can give it back.
      await store.releaseLease(key, 'someone-else');
      expect(await store.acquireLease(key, 300)).toBeNull();
      await store.releaseLease(key, token!);
      const next = await store.acquireLease(key, 200);
      expect(next).toEqual(expect.any(String));
      expect(next).not.toBe(token);
      await sleep(350);
      expect(await store.acquireLease(key, 200)).toEqual(expect.any(String));
    });

    it('purges bump route and tenant generations and reach subscribers', async () => {
      const { store, tenantId } = await setup();
      const messages: CachePurgeMessage[] = [];
      await subscribed(store, messages, tenantId);
      const initial = await store.generations(tenantId);
      expect(initial.tenant).toBe(0);
      expect(initial.routes.size).toBe(0);
      expect(await store.purge({ kind: 'route', tenantId, routeId: 'r1' })).toEqual({
        kind: 'route',
        tenantId,
        routeId: 'r1',
        generation: 1,
      });
      await store.purge({ kind: 'route', tenantId, routeId: 'r1' });
      await store.purge({ kind: 'tenant', tenantId });
      const after = await store.generations(tenantId);
      expect(after.tenant).toBe(1);
      expect(after.routes.get('r1')).toBe(2);
      await until(() => messages.length >= 3);
      // A Redis Cluster delivers messages of different channels in no fixed order; subscribers keep the
      // highest generation they have seen, so only the set of messages matters.
      expect(messages.map((m) => ('generation' in m ? `${m.kind}:${m.generation}` : m.kind)).sort()).toEqual([
        'route:1',
        'route:2',
        'tenant:1',
      ]);
    });

    it('a purge by tag drops the entries tagged with it (variants too), keeps the others, tells subscribers', async () => {
      const { store, tenantId } = await setup();
      const messages: CachePurgeMessage[] = [];
      await subscribed(store, messages, tenantId);
      const base = `c:{${tenantId}}:0:r:0`;
      const tagged = (tags: string[]) => entry('tagged', { tags });
      const indexes = (tags: string[]) => tags.map((tag) => tagIndexKey('', tenantId, tag));
      await store.putResponse({
        key: `${base}:a:v`,
        entry: tagged(['product-1', 'catalog']),
        ttlMs: 60_000,
        pathIndexKey: `${base}:a:idx`,
        tagIndexKeys: indexes(['product-1', 'catalog']),
      });
      await store.putVariant({
        key: `${base}:b:v:fr`,
        urlKey: `${base}:b:v`,
        entry: entry('fr', { tags: ['product-2'], varyOn: ['accept-language'] }),
        ttlMs: 60_000,
        pathIndexKey: `${base}:b:idx`,
        maxVariants: 4,
        tagIndexKeys: indexes(['product-2']),
      });
      await store.putResponse({
        key: `${base}:c:v`,
        entry: tagged(['catalog']),
        ttlMs: 60_000,
        pathIndexKey: `${base}:c:idx`,
        tagIndexKeys: indexes(['catalog']),
      });
      expect(await store.purgeTagged({ kind: 'tags', tenantId, tags: ['product-1', 'product-2'] })).toEqual({
        kind: 'tags',
        tenantId,
        tags: ['product-1', 'product-2'],
      });
      expect(await store.get(`${base}:a:v`)).toBeNull();
      expect(await store.get(`${base}:b:v:fr`)).toBeNull();
      expect((await store.get(`${base}:c:v`))?.kind).toBe('response');
      await until(() => messages.length > 0);
      expect(messages).toEqual([{ kind: 'tags', tenantId, tags: ['product-1', 'product-2'] }]);
    });

    it('a write whose origin was asked before a purge of its tag or path is not stored; one asked after it is', async () => {
      const { store, tenantId } = await setup();
      const base = `c:{${tenantId}}:0:r:0`;
      const indexes = (tags: string[]) => tags.map((tag) => tagIndexKey('', tenantId, tag));
      const write = (path: string, askedMsAgo: number, variant = false) => {
        const response = {
          key: `${base}:${path}:v`,
          entry: entry('answer', { tags: ['product-7'] }),
          ttlMs: 60_000,
          pathIndexKey: `${base}:${path}:idx`,
          tagIndexKeys: indexes(['product-7']),
          askedMsAgo,
        };
        return variant
          ? store.putVariant({ ...response, key: `${response.key}:fr`, urlKey: response.key, maxVariants: 4 })
          : store.putResponse(response);
      };
      await sleep(20);
      await store.purgeTagged({ kind: 'tags', tenantId, tags: ['product-7'] });
      expect(await write('a', 5_000)).toBe('purged');
      expect(await write('b', 5_000, true)).toBe('purged');
      expect(await store.get(`${base}:a:v`)).toBeNull();
      expect(await store.get(`${base}:b:v:fr`)).toBeNull();
      await store.invalidatePath(`${base}:c:idx`);
      const untagged = {
        key: `${base}:c:v`,
        entry: entry('answer'),
        ttlMs: 60_000,
        pathIndexKey: `${base}:c:idx`,
      };
      expect(await store.putResponse({ ...untagged, askedMsAgo: 5_000 })).toBe('purged');
      // Asked after the purges, or another path and tag: stored.
      await sleep(20);
      expect(await write('a', 0)).toBe('stored');
      expect(await store.putResponse({ ...untagged, askedMsAgo: 0 })).toBe('stored');
      expect(
        await store.putResponse({
          ...untagged,
          key: `${base}:d:v`,
          pathIndexKey: `${base}:d:idx`,
          askedMsAgo: 5_000,
        }),
      ).toBe('stored');
    });

    // Regression: the writer reckons askedMsAgo by its clock and the store reads its own later; a
    // millisecond ending between the two readings moved the ask past a purge of the ask's millisecond.
    it("a write asked before a purge by the writer's own reading is not stored, whatever its askedMsAgo says", async () => {
      const { store, tenantId } = await setup();
      const base = `c:{${tenantId}}:0:r:0`;
      const askedAt = Date.now();
      await store.purgeTagged({ kind: 'tags', tenantId, tags: ['product-7'] });
      await sleep(5);
      const write = {
        key: `${base}:a:v`,
        entry: entry('answer', { tags: ['product-7'] }),
        ttlMs: 60_000,
        pathIndexKey: `${base}:a:idx`,
        tagIndexKeys: [tagIndexKey('', tenantId, 'product-7')],
      };
      expect(await store.putResponse({ ...write, askedMsAgo: 0, askedAt })).toBe('purged');
      expect(await store.get(write.key)).toBeNull();
      expect(await store.putResponse({ ...write, askedMsAgo: 0, askedAt: Date.now() })).toBe('stored');
    });

    // Regression: a soft purge of tags and prefixes together went out as one message of up to twice
    // CACHE_TAGS_MAX tags, which the other replicas' parsePurgeMessage refused.
    it('announces a purge of more than CACHE_TAGS_MAX tags in messages every replica takes', async () => {
      const { store, tenantId } = await setup();
      const messages: CachePurgeMessage[] = [];
      await subscribed(store, messages, tenantId);
      const tags = Array.from({ length: CACHE_TAGS_MAX * 2 }, (_, i) => `t${i}`);
      await store.purgeTagged({ kind: 'tags', tenantId, tags, soft: true });
      await store.purgeTagged({ kind: 'tags', tenantId, tags });
      await until(() => messages.length >= 4);
      expect(messages.map((message) => parsePurgeMessage(encodePurgeMessage(message)))).toEqual(messages);
      const announced = (soft: boolean) =>
        messages
          .flatMap((m) => (m.kind === 'tags' && (m.softAt !== undefined) === soft ? m.tags : []))
          .sort();
      expect(announced(true)).toEqual([...tags].sort());
      expect(announced(false)).toEqual([...tags].sort());
    });

    it('keeps at most CACHE_SOFT_PURGED_TAGS_MAX soft-purged tags per tenant; hard purges free them', async () => {
      const { store, tenantId } = await setup();
      const soft = (tags: string[]) => store.purgeTagged({ kind: 'tags', tenantId, tags, soft: true });
      const tags = (from: number, count: number) => Array.from({ length: count }, (_, i) => `t${from + i}`);
      for (let from = 0; from < CACHE_SOFT_PURGED_TAGS_MAX; from += 1_000) await soft(tags(from, 1_000));
      // Soft-purging a tag again takes no more room; a new one is refused, and so is its whole purge.
      await soft(['t0', 't0']);
      await expect(soft(['t0', 'new'])).rejects.toBeInstanceOf(SoftPurgedTagsFull);
      const held = await store.generations(tenantId);
      expect(held.softTags.size).toBe(CACHE_SOFT_PURGED_TAGS_MAX);
      expect(held.softTags.has('new')).toBe(false);
      // Another tenant's room is its own.
      await store.purgeTagged({ kind: 'tags', tenantId: `${tenantId}-neighbour`, tags: ['new'], soft: true });
      // A hard purge of a tag forgets its soft purge: room for one more.
      await store.purgeTagged({ kind: 'tags', tenantId, tags: ['t1'] });
      await soft(['new']);
      await expect(soft(['newer'])).rejects.toBeInstanceOf(SoftPurgedTagsFull);
      // A purge of the whole tenant forgets them all.
      await store.purge({ kind: 'tenant', tenantId });
      expect((await store.generations(tenantId)).softTags.size).toBe(0);
      await soft(['newer']);
    });

    describe('per-tenant byte bound', () => {
      // Bodies of 9 kB (charged a little more: record headers, index listings): three fit in a 35 kB
      // bound, four do not.
      const BODY = 9_000;
      const BOUND = 35_000;
      const put = (
        store: CacheStore,
        tenantId: string,
        name: string,
        extra: Partial<{ ttlMs: number; tenantMaxBytes: number }> = {},
      ) =>
        store.putResponse({
          key: `c:{${tenantId}}:0:r:0:${name}:v`,
          entry: entry(Buffer.alloc(BODY, name)),
          ttlMs: extra.ttlMs ?? 60_000,
          pathIndexKey: `c:{${tenantId}}:0:r:0:${name}:idx`,
          ...(extra.tenantMaxBytes === undefined ? {} : { tenantMaxBytes: extra.tenantMaxBytes }),
        });
      const has = async (store: CacheStore, tenantId: string, name: string) =>
        (await store.get(`c:{${tenantId}}:0:r:0:${name}:v`)) !== null;
      const present = async (store: CacheStore, tenantId: string, names: string[]) => {
        const found: string[] = [];
        for (const name of names) if (await has(store, tenantId, name)) found.push(name);
        return found;
      };

      it("a tenant filling past its bound evicts its own least recently used entries, never another tenant's", async () => {
        const evictions: Array<[EvictionReason, number]> = [];
        const { store, tenantId } = await setup({
          tenantMaxBytes: BOUND,
          onEvicted: (reason, count) => evictions.push([reason, count]),
        });
        const neighbour = `${tenantId}-neighbour`;
        expect(await put(store, neighbour, 'b1')).toBe('stored');
        expect(await put(store, neighbour, 'b2')).toBe('stored');
        for (const name of ['a1', 'a2', 'a3', 'a4', 'a5'])
          expect(await put(store, tenantId, name)).toBe('stored');
        expect(await present(store, tenantId, ['a1', 'a2', 'a3', 'a4', 'a5'])).toEqual(['a3', 'a4', 'a5']);
        expect(await present(store, neighbour, ['b1', 'b2'])).toEqual(['b1', 'b2']);
        expect(evictions).toEqual([
          ['lru', 1],
          ['lru', 1],
        ]);
      });

      it('a lowered bound trims the tenant at once, least recently used out, and no other tenant', async () => {
        const evictions: Array<[EvictionReason, number]> = [];
        const { store, tenantId } = await setup({
          tenantMaxBytes: BOUND,
          onEvicted: (reason, count) => evictions.push([reason, count]),
        });
        const neighbour = `${tenantId}-neighbour`;
        for (const name of ['b1', 'b2', 'b3']) await put(store, neighbour, name);
        for (const name of ['a1', 'a2', 'a3']) await put(store, tenantId, name);
        expect(await has(store, tenantId, 'a1')).toBe(true);
        await store.trimTenant(tenantId, Math.floor(BOUND / 2), 2n);
        expect(await present(store, tenantId, ['a1', 'a2', 'a3'])).toEqual(['a1']);
        expect(await present(store, neighbour, ['b1', 'b2', 'b3'])).toEqual(['b1', 'b2', 'b3']);
        expect(evictions).toEqual([['lru', 2]]);
        // Within its bound (the store's default here), nothing goes.
        await store.trimTenant(tenantId, undefined, 3n);
        expect(await present(store, tenantId, ['a1'])).toEqual(['a1']);
      });

      it('an entry read from the store survives over an older unread one', async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: BOUND });
        for (const name of ['a1', 'a2', 'a3']) await put(store, tenantId, name);
        expect(await has(store, tenantId, 'a1')).toBe(true);
        await put(store, tenantId, 'a4');
        expect(await present(store, tenantId, ['a1', 'a2', 'a3', 'a4'])).toEqual(['a1', 'a3', 'a4']);
      });

      it('an entry larger than the bound is refused and evicts nothing', async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: BOUND });
        await put(store, tenantId, 'a1');
        const huge = entry(Buffer.alloc(BOUND, 'h'));
        const base = `c:{${tenantId}}:0:r:0`;
        expect(
          await store.putResponse({
            key: `${base}:huge:v`,
            entry: huge,
            ttlMs: 60_000,
            pathIndexKey: `${base}:huge:idx`,
          }),
        ).toBe('over_tenant_bound');
        expect(
          await store.putVariant({
            key: `${base}:huge:v:fr`,
            urlKey: `${base}:huge:v`,
            entry: { ...huge, varyOn: ['accept-language'] },
            ttlMs: 60_000,
            pathIndexKey: `${base}:huge:idx`,
            maxVariants: 4,
          }),
        ).toBe('over_tenant_bound');
        expect(await store.get(`${base}:huge:v`)).toBeNull();
        expect(await store.get(`${base}:huge:v:fr`)).toBeNull();
        expect(await has(store, tenantId, 'a1')).toBe(true);
      });

      // Regression tests: a write was stored whether or not its evictions made room, so entries as large
      // as the bound, each paying with MAX_EVICTIONS_PER_STORE small ones, piled up to many times it;
      // then a rule that refused such writes starved any entry larger than 32 small ones.
      describe('large entries against many small ones', () => {
        const bound = 200_000;
        // Each charged 1–2 kB: more than fit, so the tenant is full of them.
        const tinyCount = 300;
        const fill = async (store: CacheStore, base: string, name: string, bytes: number) =>
          store.putResponse({
            key: `${base}:${name}:v`,
            entry: entry(Buffer.alloc(bytes, name[0])),
            ttlMs: 60_000,
            pathIndexKey: `${base}:${name}:idx`,
          });
        const fullOfTinyEntries = async () => {
          const { store, tenantId } = await setup({ tenantMaxBytes: bound });
          const base = `c:{${tenantId}}:0:r:0`;
          for (let i = 0; i < tinyCount; i++) await fill(store, base, `tiny${i}`, 1);
          return { store, base };
        };

        it('entries near the bound never pile up past twice it, and they still get in', async () => {
          const { store, base } = await fullOfTinyEntries();
          let stored = 0;
          for (let i = 0; i < 12; i++) {
            if ((await fill(store, base, `big${i}`, bound - 10_000)) === 'stored') stored++;
            let live = 0;
            for (let j = 0; j <= i; j++) if ((await store.get(`${base}:big${j}:v`)) !== null) live++;
            expect(live, `after big${i}`).toBeLessThanOrEqual(2);
          }
          expect(stored).toBeGreaterThanOrEqual(4);
        });

        it('a variant refused after replacing the last of its URL leaves no Vary marker behind', async () => {
          const { store, base } = await fullOfTinyEntries();
          const urlKey = `${base}:page:v`;
          const variant = (name: string) =>
            store.putVariant({
              key: `${urlKey}:${name}`,
              urlKey,
              entry: entry(Buffer.from(name), { varyOn: ['accept-language'] }),
              ttlMs: 60_000,
              pathIndexKey: `${base}:page:idx`,
              maxVariants: 1,
            });
          expect(await variant('fr')).toBe('stored');
          // Stored over the bound by almost its size: the next write cannot evict back under it.
          expect(await fill(store, base, 'big', bound - 10_000)).toBe('stored');
          expect(await variant('en')).toBe('over_tenant_bound');
          expect(await store.get(`${urlKey}:fr`)).toBeNull();
          expect(await store.get(`${urlKey}:en`)).toBeNull();
          // The marker is charged within its variants: one left without any is held by no share.
          expect(await store.get(urlKey)).toBeNull();
        });

        it('an entry much larger than 32 small ones is stored at once when the tenant is within its bound', async () => {
          const { store, base } = await fullOfTinyEntries();
          expect(await fill(store, base, 'large', bound / 4)).toBe('stored');
          expect(await store.get(`${base}:large:v`)).not.toBeNull();
        });
      });

      it("a write's own bound (the tenant's setting) overrides the store's default", async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: BOUND });
        const small = 25_000;
        expect(await put(store, tenantId, 'a1', { tenantMaxBytes: small })).toBe('stored');
        expect(await put(store, tenantId, 'a2', { tenantMaxBytes: small })).toBe('stored');
        expect(await put(store, tenantId, 'a3', { tenantMaxBytes: small })).toBe('stored');
        expect(await present(store, tenantId, ['a1', 'a2', 'a3'])).toEqual(['a2', 'a3']);
        expect(await put(store, tenantId, 'big', { tenantMaxBytes: 5_000 })).toBe('over_tenant_bound');
      });

      it('variants count against the bound and are evicted like responses', async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: BOUND });
        const urlKey = `c:{${tenantId}}:0:r:0:p:url`;
        const variant = (name: string) =>
          store.putVariant({
            key: `${urlKey}:${name}`,
            urlKey,
            entry: entry(Buffer.alloc(BODY, name), { varyOn: ['accept-language'] }),
            ttlMs: 60_000,
            pathIndexKey: `c:{${tenantId}}:0:r:0:p:idx`,
            maxVariants: 8,
          });
        for (const name of ['fr', 'en', 'de', 'it']) expect(await variant(name)).toBe('stored');
        expect(await store.get(`${urlKey}:fr`)).toBeNull();
        for (const name of ['en', 'de', 'it'])
          expect((await store.get(`${urlKey}:${name}`))?.kind).toBe('response');
        expect(await store.get(urlKey)).toEqual({ kind: 'vary', varyOn: ['accept-language'] });
      });

      // Regression: the in-memory store counted the response a URL held until its first variant was
      // stored, so that variant pushed out one of the tenant's other entries production kept.
      it("a URL's first variant takes the place of the response the URL held, evicting no other entry", async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: BOUND });
        await put(store, tenantId, 'a1');
        await put(store, tenantId, 'a2');
        // The URL's response, before its origin began to vary it.
        expect(await put(store, tenantId, 'p')).toBe('stored');
        const urlKey = `c:{${tenantId}}:0:r:0:p:v`;
        const stored = await store.putVariant({
          key: `${urlKey}:fr`,
          urlKey,
          entry: entry(Buffer.alloc(BODY, 'fr'), { varyOn: ['accept-language'] }),
          ttlMs: 60_000,
          pathIndexKey: `c:{${tenantId}}:0:r:0:p:idx`,
          maxVariants: 8,
        });
        expect(stored).toBe('stored');
        expect(await store.get(urlKey)).toEqual({ kind: 'vary', varyOn: ['accept-language'] });
        expect((await store.get(`${urlKey}:fr`))?.kind).toBe('response');
        expect(await present(store, tenantId, ['a1', 'a2'])).toEqual(['a1', 'a2']);
      });

      // Regression (cache/auth review): only record bytes counted, so tiny entries listed in a path
      // index and several tag sets held many times the tenant's bound in Redis.
      it('keeping track of an entry (its index and tag listings) counts against the bound', async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: 10_000 });
        const base = `c:{${tenantId}}:0:r:0`;
        const tags = ['t1', 't2', 't3', 't4'];
        const tiny = entry('x', { tags });
        for (let i = 0; i < 100; i++)
          expect(
            await store.putResponse({
              key: `${base}:p:${i}`,
              entry: tiny,
              ttlMs: 60_000,
              pathIndexKey: `${base}:p:idx`,
              tagIndexKeys: tags.map((tag) => tagIndexKey('', tenantId, tag)),
            }),
          ).toBe('stored');
        let kept = 0;
        for (let i = 0; i < 100; i++) if ((await store.get(`${base}:p:${i}`)) !== null) kept++;
        // A record of ~150 bytes: 60 would fit by record bytes alone; each costs ~1.4 kB to list.
        expect(kept).toBeGreaterThan(0);
        expect(kept).toBeLessThan(10);
        expect((await store.get(`${base}:p:99`))?.kind).toBe('response');
      });

      // Regression: the in-memory store charged a record by its body and header characters, not as it is
      // stored (its tags, the JSON of its headers), so `make dev` kept entries production refused.
      it('an entry counts as it is stored, its tags included', async () => {
        const { store, tenantId } = await setup({ tenantMaxBytes: 15_000 });
        const base = `c:{${tenantId}}:0:r:0`;
        // 64 tags of 200 characters: 12,800 bytes of a one-byte response.
        const tags = (name: string, length: number) =>
          Array.from({ length: 64 }, (_, i) => `${name}-${i}-`.padEnd(length, 'x'));
        const tagged = (name: string, tagLength = 200) =>
          store.putResponse({
            key: `${base}:${name}:v`,
            entry: entry('x', { tags: tags(name, tagLength) }),
            ttlMs: 60_000,
            pathIndexKey: `${base}:${name}:idx`,
          });
        expect(await tagged('t1')).toBe('stored');
        expect(await tagged('t2')).toBe('stored');
        // Two of them are over the bound: the older one made room.
        expect(await store.get(`${base}:t1:v`)).toBeNull();
        expect((await store.get(`${base}:t2:v`))?.kind).toBe('response');
        // 64 tags of CACHE_TAG_MAX_LENGTH: more than the bound by themselves.
        expect(await tagged('large', CACHE_TAG_MAX_LENGTH)).toBe('over_tenant_bound');
        expect(await store.get(`${base}:large:v`)).toBeNull();
      });

      it('expired entries give their bytes back instead of pushing out live ones', async () => {
        const evictions: Array<[EvictionReason, number]> = [];
        const { store, tenantId } = await setup({
          tenantMaxBytes: BOUND,
          onEvicted: (reason, count) => evictions.push([reason, count]),
        });
        await put(store, tenantId, 'short', { ttlMs: 200 });
        await put(store, tenantId, 'a1');
        await put(store, tenantId, 'a2');
        await sleep(350);
        expect(await put(store, tenantId, 'a3')).toBe('stored');
        expect(await present(store, tenantId, ['short', 'a1', 'a2', 'a3'])).toEqual(['a1', 'a2', 'a3']);
        expect(evictions).toEqual([['expired', 1]]);
      });
    });
  });
}
