import { eventStoreContract } from '../contract.js';
import { EventStoreDbEventStore } from './eventstoredb-event-store.js';

// No EventStoreDB server runs in the local infrastructure; the suite runs when one is pointed at,
// e.g. EVENTSTOREDB_URL=esdb://127.0.0.1:2113?tls=false, and otherwise reports itself skipped.
const url = process.env['EVENTSTOREDB_URL'];

eventStoreContract(
  url ? 'EventStoreDB adapter contract' : 'EventStoreDB adapter contract (set EVENTSTOREDB_URL to run)',
  async () => ({
    createStore: (options) => new EventStoreDbEventStore({ url: url ?? '', ...options }),
    cleanup: async () => {},
  }),
  { skip: !url },
);
