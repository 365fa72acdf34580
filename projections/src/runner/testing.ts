import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { ReadAllOptions, RecordedEvent } from '@vantageedge/shared/event-store/port';

/**
 * The in-memory event store with reads that take a round trip, as PostgreSQL's do, and that tell which
 * positions a subscription has read (the in-memory store's reads finish before the next macrotask, so
 * a consumer batching what is available never sees a read in flight).
 */
export class RoundTripEventStore extends InMemoryEventStore {
  readonly #positionsRead = new Set<bigint>();

  override async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    const events = await super.readAll(options);
    for (const event of events) this.#positionsRead.add(event.position);
    return events;
  }

  /** Resolves once a read has returned the event at `position`. */
  async untilRead(position: bigint): Promise<void> {
    while (!this.#positionsRead.has(position)) await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
