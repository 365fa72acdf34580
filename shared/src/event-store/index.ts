export { EventStoreDbEventStore } from './eventstoredb/eventstoredb-event-store.js';
export * from './factory.js';
export { InMemoryEventStore } from './in-memory/in-memory-event-store.js';
export * from './port.js';
export { PostgresEventStore } from './postgres/postgres-event-store.js';
export { assertEventStoreSettings, type EventStoreSettings, eventStoreSettings } from './settings.js';
export { UpcasterRegistry } from './upcasting.js';
