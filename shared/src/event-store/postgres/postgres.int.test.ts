import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { eventStoreContract } from '../contract.js';
import { PostgresEventStore } from './postgres-event-store.js';

eventStoreContract('PostgreSQL adapter contract', async () => {
  const database: TestDatabase = await createTestDatabase();
  return {
    createStore: (options) => new PostgresEventStore({ pool: database.pool, ...options }),
    cleanup: () => database.drop(),
  };
});
