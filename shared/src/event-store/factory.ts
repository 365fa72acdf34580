import type pg from 'pg';
import { EventStoreDbEventStore } from './eventstoredb/eventstoredb-event-store.js';
import { InMemoryEventStore } from './in-memory/in-memory-event-store.js';
import type { EventStore } from './port.js';
import { PostgresEventStore } from './postgres/postgres-event-store.js';
import { assertEventStoreSettings, type EventStoreSettings } from './settings.js';
import type { UpcasterRegistry } from './upcasting.js';

export type EventStoreConfig =
  | { kind: 'postgres'; pool: pg.Pool; upcasters?: UpcasterRegistry }
  | { kind: 'eventstoredb'; url: string; upcasters?: UpcasterRegistry }
  | { kind: 'memory'; upcasters?: UpcasterRegistry };

export function createEventStore(config: EventStoreConfig): EventStore {
  const upcasters = config.upcasters ? { upcasters: config.upcasters } : {};
  switch (config.kind) {
    case 'memory':
      return new InMemoryEventStore(upcasters);
    case 'postgres':
      return new PostgresEventStore({ pool: config.pool, ...upcasters });
    case 'eventstoredb':
      return new EventStoreDbEventStore({ url: config.url, ...upcasters });
  }
}

/** Turns parsed EVENT_STORE/EVENTSTOREDB_URL settings into a factory config. */
export function eventStoreConfigFromSettings(
  settings: EventStoreSettings,
  { pool, upcasters }: { pool: pg.Pool; upcasters?: UpcasterRegistry },
): EventStoreConfig {
  assertEventStoreSettings(settings);
  const extra = upcasters ? { upcasters } : {};
  switch (settings.EVENT_STORE) {
    case 'postgres':
      return { kind: 'postgres', pool, ...extra };
    case 'eventstoredb':
      return { kind: 'eventstoredb', url: settings.EVENTSTOREDB_URL ?? '', ...extra };
    case 'memory':
      return { kind: 'memory', ...extra };
  }
}
