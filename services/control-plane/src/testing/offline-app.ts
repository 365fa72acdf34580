import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import pg from 'pg';
import { type ControlPlaneAppDeps, createControlPlaneApp } from '../http/app.js';

/** Parts of the app to switch on; its store and pool are the offline ones. */
type OfflineExtras = Partial<Omit<ControlPlaneAppDeps, 'store' | 'pool'>>;

/**
 * The dependencies of a control-plane app that connects nowhere: an in-memory event store, a pool
 * pointing at a closed port (a request that needs PostgreSQL is refused before it would), no Clerk key.
 * For tests of what the app answers before any store is read.
 */
export function offlineAppDeps(extra: OfflineExtras = {}): ControlPlaneAppDeps & {
  readonly store: InMemoryEventStore;
  readonly pool: pg.Pool;
  close(): Promise<void>;
} {
  const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' });
  const store = new InMemoryEventStore();
  return {
    store,
    pool,
    auth: {
      jwtKey: undefined,
      publishableKey: 'pk_test_unused',
      issuer: 'https://unused.clerk.accounts.dev',
      authorizedParties: [],
      platformAdminUserIds: new Set(),
    },
    apiKeyPepper: 'unit-pepper-0123456789abcdef0123456789abcdef',
    ...extra,
    async close() {
      await store.close();
      await pool.end();
    },
  };
}

/** An offline app listening on a loopback port: its base URL, and close() for afterAll. */
export async function listenOffline(
  extra: OfflineExtras = {},
): Promise<{ readonly base: string; close(): Promise<void> }> {
  const deps = offlineAppDeps(extra);
  const app = createControlPlaneApp(deps);
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await deps.close();
    },
  };
}
