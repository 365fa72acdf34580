import { randomUUID } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { originLookupThreads, type ResolveCallback, TenantDnsLookups } from './dns-lookups.js';
import { createUpstreamSet } from './index.js';
import { exchange, loopbackOriginsAllowed, startTestOrigin } from './testing/test-origin.js';

type LookupCallback = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

/** Names under .stalled.test resolve as a name server that never answers would: the lookup hangs. */
const stalled: LookupCallback[] = [];
/** What names under .zone.test resolve to now: their addresses, or the error code a lookup fails with. */
const zone = new Map<string, LookupAddress[] | string>();
vi.mock('node:dns', async (importOriginal) => {
  const dns = await importOriginal<typeof import('node:dns')>();
  const lookup = (hostname: string, options: object, callback: LookupCallback) => {
    const record = zone.get(hostname);
    if (hostname.endsWith('.stalled.test')) stalled.push(callback);
    else if (typeof record === 'string') {
      setImmediate(() => callback(Object.assign(new Error(record), { code: record }), []));
    } else if (record !== undefined) setImmediate(() => callback(null, record));
    else dns.lookup(hostname, options, callback as never);
  };
  return { ...dns, default: { ...dns, lookup }, lookup };
});

const timedOut = () => Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' });

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  // Each answer lets the tenant's next lookup start (and stall): answer until none is left.
  for (let callback = stalled.shift(); callback !== undefined; callback = stalled.shift()) {
    callback(Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' }), []);
  }
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  zone.clear();
  vi.useRealTimers();
});

/**
 * Regression test: every connection's DNS lookup is a getaddrinfo call on libuv's thread pool (4
 * threads), which nothing can cancel. A tenant whose targets are names its own name server never
 * answers (8 targets, probed at once) held every thread for the resolver's timeout on each probe, and
 * every other tenant's lookups (origins by name, JWKS fetches) waited behind them: measured in a
 * private mount namespace with such a resolver, `dns.lookup('localhost')` took 19 s.
 */
describe("a tenant's DNS lookups", () => {
  it('run one at a time, so names that never resolve hold one thread, not the pool', async () => {
    const greedy = createUpstreamSet(
      originConfig.parse({
        id: randomUUID(),
        name: 'stalled',
        targets: Array.from({ length: 8 }, (_, i) => ({ url: `http://t${i}.stalled.test:8080` })),
        health_check: { active: { interval_seconds: 1, timeout_seconds: 0.5 } },
      }),
      { tenantId: randomUUID(), addressPolicy: loopbackOriginsAllowed() },
    );
    cleanups.push(() => greedy.close());
    const origin = await startTestOrigin('other-tenant');
    cleanups.push(() => origin.close());
    const other = createUpstreamSet(
      originConfig.parse({
        id: randomUUID(),
        name: 'by-name',
        targets: [{ url: origin.url.replace('127.0.0.1', 'localhost') }],
        health_check: { active: { enabled: false } },
      }),
      { tenantId: randomUUID(), addressPolicy: loopbackOriginsAllowed() },
    );
    cleanups.push(() => other.close());
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(stalled.length).toBe(1);
    expect((await exchange(other))?.servedBy).toBe('other-tenant');
  });

  it('answers lookups of one name with one lookup, and starts the next name when it is answered', async () => {
    const resolve = new TenantDnsLookups().forTenant(randomUUID());
    const answered: string[] = [];
    for (const name of ['a.stalled.test', 'a.stalled.test', 'a.stalled.test', 'b.stalled.test']) {
      resolve(name, {}, (error, addresses) =>
        answered.push(`${name} ${addresses[0]?.address ?? error?.code}`),
      );
    }
    expect(stalled.length).toBe(1);
    stalled.shift()!(null, [{ address: '192.0.2.1', family: 4 }]);
    expect(answered).toEqual(Array(3).fill('a.stalled.test 192.0.2.1'));
    expect(stalled.length).toBe(1); // b's lookup
  });

  it("hold at most the origin lookups' share of the thread pool, every tenant's together, and tenants take turns for it", () => {
    const running: Array<{ name: string; answer: ResolveCallback }> = [];
    const lookups = new TenantDnsLookups({
      maxRunning: 2,
      resolve: (name, _options, answer) => running.push({ name, answer }),
    });
    const answered: string[] = [];
    const ask = (tenant: string, name: string) =>
      lookups.forTenant(tenant)(name, {}, (error) => answered.push(`${name} ${error?.code ?? 'ok'}`));
    ask('greedy', 'a.stalled.test');
    ask('greedy', 'b.stalled.test');
    ask('greedy-too', 'c.stalled.test');
    ask('other', 'origin.other.test');
    // Two names that never resolve hold the two threads; the other tenant's lookup waits for one.
    expect(running.map((r) => r.name)).toEqual(['a.stalled.test', 'c.stalled.test']);
    running[0]!.answer(Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' }), []);
    // The thread goes to the tenant that has waited longest, not to the greedy tenant's next name.
    expect(running.map((r) => r.name)).toEqual(['a.stalled.test', 'c.stalled.test', 'origin.other.test']);
    running[2]!.answer(null, [{ address: '192.0.2.7', family: 4 }]);
    expect(running.map((r) => r.name).at(-1)).toBe('b.stalled.test');
    expect(answered).toEqual(['a.stalled.test EAI_AGAIN', 'origin.other.test ok']);
  });

  it('fail the lookups of a forgotten turn that have not started; the running one goes on', async () => {
    const running: Array<{ name: string; answer: ResolveCallback }> = [];
    const lookups = new TenantDnsLookups({
      maxRunning: 1,
      resolve: (name, _options, answer) => running.push({ name, answer }),
    });
    const answered: string[] = [];
    const ask = (turn: string, name: string) =>
      lookups.forTenant(turn)(name, {}, (error) => answered.push(`${name} ${error?.code ?? 'ok'}`));
    ask('gone', 'a.stalled.test');
    ask('gone', 'b.stalled.test');
    ask('gone', 'b.stalled.test');
    ask('other', 'origin.other.test');
    lookups.forget('gone');
    await Promise.resolve();
    expect(answered).toEqual(['b.stalled.test EAI_AGAIN', 'b.stalled.test EAI_AGAIN']);
    running[0]!.answer(null, [{ address: '192.0.2.1', family: 4 }]);
    expect(running.map((r) => r.name)).toEqual(['a.stalled.test', 'origin.other.test']);
    expect(answered.at(-1)).toBe('a.stalled.test ok');
  });

  // Regression test: lookups that had not started stayed in line after the upstream set that asked for
  // them closed, and each held a thread for the resolver's whole timeout when its turn came: deleting a
  // tenant whose targets' names never resolve left up to 256 of them (at 10 s each, 40 minutes of a
  // thread the other tenants' new connections take turns for), and a tenant that replaced such names
  // waited that long for its new ones.
  it('leave the line once the upstream set that asked for them closes (its origin changed or removed, the tenant deleted)', async () => {
    const running: Array<{ name: string; answer: ResolveCallback }> = [];
    const lookups = new TenantDnsLookups({
      maxRunning: 1,
      resolve: (name, _options, answer) => running.push({ name, answer }),
    });
    const origin = (name: string) =>
      originConfig.parse({
        id: randomUUID(),
        name,
        targets: Array.from({ length: 3 }, (_, i) => ({ url: `http://${name}${i}.stalled.test:8080` })),
        health_check: { active: { interval_seconds: 60, timeout_seconds: 0.5 } },
      });
    const deps = { tenantId: randomUUID(), addressPolicy: loopbackOriginsAllowed(), dnsLookups: lookups };
    const first = createUpstreamSet(origin('first'), deps);
    const second = createUpstreamSet(origin('second'), deps);
    await vi.waitFor(() => expect(running.map((lookup) => lookup.name)).toEqual(['first0.stalled.test']));

    // One origin of the tenant removed: the other's names are next in the tenant's turn.
    await first.close();
    const answered: string[] = [];
    lookups.forTenant('other-tenant')('origin.other.test', {}, (error) => answered.push(error?.code ?? 'ok'));
    running[0]!.answer(timedOut(), []);
    running[1]!.answer(null, [{ address: '192.0.2.7', family: 4 }]);
    expect(answered).toEqual(['ok']);
    await vi.waitFor(() => expect(running.map((lookup) => lookup.name).at(-1)).toBe('second0.stalled.test'));

    // The tenant's last set closed (the tenant deleted): none of its names is looked up any more.
    await second.close();
    running.at(-1)!.answer(timedOut(), []);
    lookups.forTenant('other-tenant')('origin.other.test', {}, (error) => answered.push(error?.code ?? 'ok'));
    expect(running.map((lookup) => lookup.name).at(-1)).toBe('origin.other.test');
    running.at(-1)!.answer(null, [{ address: '192.0.2.7', family: 4 }]);
    expect(answered).toEqual(['ok', 'ok']);
    expect(running.map((lookup) => lookup.name)).toEqual([
      'first0.stalled.test',
      'origin.other.test',
      'second0.stalled.test',
      'origin.other.test',
    ]);
  });

  it('keep serving a name whose name server fails (SERVFAIL, no answer) from its last answer, as Kong and Envoy do', async () => {
    const origin = await startTestOrigin('origin-by-name');
    cleanups.push(() => origin.close());
    const tenantId = randomUUID();
    const byName = () => {
      const set = createUpstreamSet(
        originConfig.parse({
          id: randomUUID(),
          name: 'by-name',
          targets: [{ url: origin.url.replace('127.0.0.1', 'origin.zone.test') }],
          health_check: { active: { enabled: false } },
        }),
        { tenantId, addressPolicy: loopbackOriginsAllowed() },
      );
      cleanups.push(() => set.close());
      return set;
    };
    zone.set('origin.zone.test', [{ address: '127.0.0.1', family: 4 }]);
    expect((await exchange(byName()))?.servedBy).toBe('origin-by-name');

    // The tenant's next snapshot builds new pools: their first connection looks the name up again.
    zone.set('origin.zone.test', 'EAI_AGAIN');
    expect((await exchange(byName()))?.servedBy).toBe('origin-by-name');
  });

  it('answer a failed lookup (EAI_AGAIN) with the last addresses for an hour, never a name that no longer exists', () => {
    let now = 0;
    const answers: Array<ResolveCallback> = [];
    const resolve = new TenantDnsLookups({
      resolve: (_name, _options, answer) => answers.push(answer),
      now: () => now,
    }).forTenant(randomUUID());
    const answered: string[] = [];
    const ask = () =>
      resolve('api.zone.test', {}, (error, addresses) =>
        answered.push(error?.code ?? addresses.map((a) => a.address).join(',')),
      );
    const fail = (code: string) => answers.shift()!(Object.assign(new Error(code), { code }), []);

    ask();
    answers.shift()!(null, [
      { address: '192.0.2.1', family: 4 },
      { address: '192.0.2.2', family: 4 },
    ]);
    now += 3_599_000;
    ask();
    fail('EAI_AGAIN');
    ask();
    fail('ENOTFOUND');
    now += 2_000;
    ask();
    fail('EAI_AGAIN');
    expect(answered).toEqual(['192.0.2.1,192.0.2.2', '192.0.2.1,192.0.2.2', 'ENOTFOUND', 'EAI_AGAIN']);
  });

  it('answer a lookup still running after a second with the last addresses, and remember what it answers', () => {
    vi.useFakeTimers();
    const answers: Array<ResolveCallback> = [];
    const resolve = new TenantDnsLookups({
      resolve: (_name, _options, answer) => answers.push(answer),
    }).forTenant(randomUUID());
    const answered: string[] = [];
    const ask = () =>
      resolve('slow.zone.test', {}, (error, addresses) =>
        answered.push(error?.code ?? addresses.map((a) => a.address).join(',')),
      );
    ask();
    vi.advanceTimersByTime(5_000);
    answers.shift()!(null, [{ address: '192.0.2.1', family: 4 }]);
    ask();
    vi.advanceTimersByTime(1_000);
    expect(answered).toEqual(['192.0.2.1', '192.0.2.1']);
    answers.shift()!(null, [{ address: '192.0.2.9', family: 4 }]);
    ask();
    answers.shift()!(Object.assign(new Error('SERVFAIL'), { code: 'EAI_AGAIN' }), []);
    expect(answered).toEqual(['192.0.2.1', '192.0.2.1', '192.0.2.9']);
  });

  // Regression: the last answers were one list for every tenant, oldest out at 100,000: a tenant whose
  // config named (over its changes) that many names pushed out every other tenant's, which then failed
  // with the first SERVFAIL of their name servers.
  it("keep a tenant's last answers however many names another tenant resolves", () => {
    let serverFails = false;
    const lookups = new TenantDnsLookups({
      resolve: (_name, _options, answer) =>
        serverFails
          ? answer(Object.assign(new Error('SERVFAIL'), { code: 'EAI_AGAIN' }), [])
          : answer(null, [{ address: '192.0.2.1', family: 4 }]),
    });
    const resolve = lookups.forTenant(randomUUID());
    const greedy = lookups.forTenant(randomUUID());
    resolve('api.zone.test', {}, () => {});
    for (let i = 0; i < 100_000; i++) greedy(`n${i}.greedy.test`, {}, () => {});

    serverFails = true;
    let answered = '';
    resolve('api.zone.test', {}, (error, addresses) => {
      answered = error?.code ?? addresses.map((a) => a.address).join(',');
    });
    expect(answered).toBe('192.0.2.1');
  });

  // Regression: a name's whole answer was kept, so 100,000 names of a zone answering thousands of
  // addresses each (a tenant's own name server) took gigabytes of a replica's heap.
  it('keep the first 16 addresses of an answer for when the name servers fail', () => {
    let serverFails = false;
    const resolve = new TenantDnsLookups({
      resolve: (_name, _options, answer) =>
        serverFails
          ? answer(Object.assign(new Error('SERVFAIL'), { code: 'EAI_AGAIN' }), [])
          : answer(
              null,
              Array.from({ length: 4_000 }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}`, family: 4 })),
            ),
    }).forTenant(randomUUID());
    const answered: number[] = [];
    const ask = () => resolve('wide.zone.test', {}, (_error, addresses) => answered.push(addresses.length));
    ask();
    serverFails = true;
    ask();
    expect(answered).toEqual([4_000, 16]);
  });

  it('leave two of libuv’s threads to the rest of the process', () => {
    expect(originLookupThreads(4)).toBe(2);
    expect(originLookupThreads(64)).toBe(62);
    expect(originLookupThreads(2)).toBe(1);
    expect(originLookupThreads(1)).toBe(1);
  });
});
