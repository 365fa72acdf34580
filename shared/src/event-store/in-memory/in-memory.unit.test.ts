import { eventStoreContract } from '../contract.js';
import { InMemoryEventStore } from './in-memory-event-store.js';

eventStoreContract('in-memory adapter contract', async () => ({
  createStore: (options) => new InMemoryEventStore(options),
  cleanup: async () => {},
}));
