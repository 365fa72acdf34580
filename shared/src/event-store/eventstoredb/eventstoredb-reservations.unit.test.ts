import { EventStoreDBClient, StreamNotFoundError, WrongExpectedVersionError } from '@eventstore/db-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventMetadata, NewEvent } from '../port.js';
import { WrongExpectedRevisionError } from '../port.js';
import { EventStoreDbEventStore } from './eventstoredb-event-store.js';

/**
 * The adapter's reservation steps (claim, append, undo) in an order only a real server's timing would
 * otherwise produce: a fake client with EventStoreDB's optimistic append check, whose appends to one
 * stream wait until the test lets them through.
 */
interface StoredEvent {
  id: string;
  type: string;
  data: unknown;
  revision: bigint;
}

class FakeEventStoreDb {
  readonly streams = new Map<string, StoredEvent[]>();
  private held: { stream: string; waiting: Array<() => void>; arrived: number } | undefined;

  /** Appends to `stream` wait from now on, until `letThrough` names them by their arrival (0, 1, …). */
  hold(stream: string): void {
    this.held = { stream, waiting: [], arrived: 0 };
  }

  async arrivedAppends(count: number): Promise<void> {
    while ((this.held?.arrived ?? 0) < count) await new Promise((resolve) => setImmediate(resolve));
  }

  letThrough(arrival: number): void {
    this.held?.waiting[arrival]?.();
  }

  async appendToStream(
    stream: string,
    events: { id: string; type: string; data: unknown } | Array<{ id: string; type: string; data: unknown }>,
    options: { expectedRevision?: bigint | 'any' | 'no_stream' | 'stream_exists' } = {},
  ) {
    const held = this.held;
    if (held?.stream === stream) {
      held.arrived += 1;
      await new Promise<void>((resolve) => held.waiting.push(resolve));
    }
    const current = this.streams.get(stream) ?? [];
    const actual = current.length === 0 ? 'no_stream' : BigInt(current.length - 1);
    const expected = options.expectedRevision ?? 'any';
    const matches =
      expected === 'any' || (expected === 'stream_exists' ? actual !== 'no_stream' : expected === actual);
    if (!matches) {
      throw new WrongExpectedVersionError(undefined, { streamName: stream, expected, current: actual });
    }
    for (const event of Array.isArray(events) ? events : [events]) {
      current.push({ id: event.id, type: event.type, data: event.data, revision: BigInt(current.length) });
    }
    this.streams.set(stream, current);
    const last = BigInt(current.length - 1);
    return { success: true, nextExpectedRevision: last, position: { commit: last, prepare: last } };
  }

  readStream(stream: string, options: { direction?: string; maxCount?: number | bigint } = {}) {
    const events = this.streams.get(stream);
    return (async function* () {
      if (!events) throw new StreamNotFoundError(undefined, stream);
      const ordered = options.direction === 'backwards' ? [...events].reverse() : events;
      for (const event of ordered.slice(0, Number(options.maxCount ?? ordered.length))) {
        yield {
          event: { ...event, streamId: stream, isJson: true, metadata: {}, position: undefined },
        };
      }
    })();
  }

  async dispose(): Promise<void> {}
}

const metadata: EventMetadata = {
  actor: 'test',
  tenant_id: null,
  correlation_id: 'c',
  causation_id: null,
  occurred_at: new Date(0).toISOString(),
  schema_version: 1,
};
const event = (type: string): NewEvent => ({ type, data: {}, metadata });

describe('EventStoreDB adapter reservations', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  function storeOnFake() {
    const fake = new FakeEventStoreDb();
    vi.spyOn(EventStoreDBClient, 'connectionString').mockReturnValue(fake as unknown as EventStoreDBClient);
    return { fake, store: new EventStoreDbEventStore({ url: 'esdb://fake' }) };
  }

  it('keeps a value held when a second append of the same stream claimed it and won', async () => {
    // A claim sent twice (a double-submitted request): the first claims the value, the second finds
    // its stream holding it and is appended; the first then loses on the expected revision.
    const { fake, store } = storeOnFake();
    const tenant = 'tenant-a';
    await store.appendToStream(tenant, [event('TenantCreated')], { expectedRevision: 'no_stream' });
    fake.hold(tenant);
    const claim = { expectedRevision: 0n, reservations: { claim: ['custom_domain:shop.test'] } };
    const first = store
      .appendToStream(tenant, [event('CustomDomainCreated')], claim)
      .catch((e: unknown) => e);
    await fake.arrivedAppends(1);
    const second = store.appendToStream(tenant, [event('CustomDomainCreated')], claim);
    await fake.arrivedAppends(2);
    fake.letThrough(1);
    await second;
    fake.letThrough(0);
    expect(await first).toBeInstanceOf(WrongExpectedRevisionError);
    expect(await store.reservationHolder('custom_domain:shop.test')).toBe(tenant);
  });

  it('keeps a value held when the first claim wins and a second, from the same stream, loses', async () => {
    const { fake, store } = storeOnFake();
    const tenant = 'tenant-b';
    await store.appendToStream(tenant, [event('TenantCreated')], { expectedRevision: 'no_stream' });
    fake.hold(tenant);
    const claim = { expectedRevision: 0n, reservations: { claim: ['subdomain:acme'] } };
    const first = store.appendToStream(tenant, [event('TenantUpdated')], claim);
    await fake.arrivedAppends(1);
    const second = store.appendToStream(tenant, [event('TenantUpdated')], claim).catch((e: unknown) => e);
    await fake.arrivedAppends(2);
    fake.letThrough(0);
    await first;
    fake.letThrough(1);
    expect(await second).toBeInstanceOf(WrongExpectedRevisionError);
    expect(await store.reservationHolder('subdomain:acme')).toBe(tenant);
  });

  it('frees a value whose only claim lost on the expected revision', async () => {
    const { store } = storeOnFake();
    const tenant = 'tenant-c';
    await store.appendToStream(tenant, [event('TenantCreated')], { expectedRevision: 'no_stream' });
    const lost = await store
      .appendToStream(tenant, [event('TenantUpdated')], {
        expectedRevision: 5n,
        reservations: { claim: ['subdomain:free'] },
      })
      .catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(WrongExpectedRevisionError);
    expect(await store.reservationHolder('subdomain:free')).toBeNull();
  });
});
