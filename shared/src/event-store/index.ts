export * from './factory.js';
export { InMemoryEventStore } from './in-memory/in-memory-event-store.js';
export * from './port.js';
export { assertEventStoreSettings, type EventStoreSettings, eventStoreSettings } from './settings.js';
export { UpcasterRegistry } from './upcasting.js';
