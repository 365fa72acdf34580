import { writeFile } from 'node:fs/promises';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import { createTestDatabase } from '@vantageedge/shared/testing/postgres';
import { json, startControlPlane } from '../testing/control-plane-harness.js';
import { projectLog, toStoredLog, writeStoredLog } from './recorded-log.js';

/**
 * Records the event-log fixture: runs the admin API's commands against a test database so that the
 * log holds every event type the control plane writes, then writes the log and what the projectors
 * make of it. Run once per vocabulary change of the log, with the release whose log is being kept:
 *
 *   node_modules/.bin/tsx services/control-plane/src/event-log-compat/record-event-log.ts <folder>
 */

const folder = process.argv[2];
if (!folder) throw new Error('usage: record-event-log.ts <fixture folder>');

let txtValues: string[] = [];
const cp = await startControlPlane({
  withReadSide: true,
  // No gateway serves this log: the purge is only recorded.
  cachePurger: { purgeRoute: async () => {}, purgeTenant: async () => {}, purgeTags: async () => {} },
  customDomains: { baseDomains: ['vantageedge.dev'], lookupTxt: async () => txtValues },
});

async function send(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await cp.request(method, path, body === undefined ? {} : { body });
  if (response.status >= 300) {
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
  }
  return response.status === 204 ? {} : json(response);
}

const id = (resource: Record<string, unknown>) => resource['id'] as string;

async function recordCommands(): Promise<void> {
  const acme = id(
    await send('POST', '/api/v1/tenants', { name: 'Acme', subdomain: 'acme', clerk_org_id: 'org_acme' }),
  );
  await send('PATCH', `/api/v1/tenants/${acme}`, {
    name: 'Acme Corp',
    settings: { rate_limit: { requests_per_second: 50 } },
  });
  await send('POST', '/api/v1/users', {
    tenant_id: acme,
    clerk_user_id: 'user_acme_owner',
    email: 'owner@acme.example',
    role: 'owner',
  });
  const admin = id(
    await send('POST', '/api/v1/users', {
      tenant_id: acme,
      clerk_user_id: 'user_acme_admin',
      email: 'admin@acme.example',
      role: 'admin',
    }),
  );
  await send('PATCH', `/api/v1/users/${admin}`, { role: 'member' });
  await send('DELETE', `/api/v1/users/${admin}`);

  const usersApi = id(
    await send('POST', '/api/v1/origins', { tenant_id: acme, name: 'users-api', url: 'http://127.0.0.1:9/' }),
  );
  await send('PATCH', `/api/v1/origins/${usersApi}`, { timeout_seconds: 10 });
  const legacyApi = id(
    await send('POST', '/api/v1/origins', { tenant_id: acme, name: 'legacy', url: 'http://127.0.0.1:10/' }),
  );
  const users = await send('POST', '/api/v1/routes', {
    tenant_id: acme,
    origin_id: usersApi,
    path_pattern: '/users/*',
    auth_mode: 'public',
    rate_limit: { requests_per_second: 100 },
  });
  const legacy = id(
    await send('POST', '/api/v1/routes', {
      tenant_id: acme,
      origin_id: legacyApi,
      path_pattern: '/legacy/*',
      auth_mode: 'apikey_required',
    }),
  );
  const beforeChanges = (await cp.store.headPosition()).toString();
  await send('PATCH', `/api/v1/routes/${id(users)}`, { priority: 5 });
  await send('DELETE', `/api/v1/routes/${legacy}`);
  await send('DELETE', `/api/v1/origins/${legacyApi}`);
  // Brings the legacy origin and route back and the users route's priority: restores and updates.
  await send('POST', `/api/v1/tenants/${acme}/config/rollback`, { to_position: beforeChanges });

  const ci = id(await send('POST', '/api/v1/api-keys', { tenant_id: acme, name: 'ci', scopes: ['read'] }));
  await send('PATCH', `/api/v1/api-keys/${ci}`, { tags: ['ci'] });
  await send('POST', `/api/v1/api-keys/${ci}/rotate`, { grace_period_seconds: 3600 });
  const batch = id(await send('POST', '/api/v1/api-keys', { tenant_id: acme, name: 'batch' }));
  await send('POST', `/api/v1/api-keys/${batch}/revoke`, { reason: 'leaked in a log' });

  await send('POST', `/api/v1/routes/${id(users)}/cache/purge`);
  await send('POST', `/api/v1/tenants/${acme}/cache/purge`);

  const pending = await send('POST', `/api/v1/tenants/${acme}/domains`, { domain: 'api.acme.example' });
  txtValues = [(pending['verification'] as { value: string }).value];
  await send('POST', `/api/v1/tenants/${acme}/domains/api.acme.example/verify`);
  await send('POST', `/api/v1/tenants/${acme}/domains`, { domain: 'www.acme.example', verified: true });
  await send('POST', `/api/v1/tenants/${acme}/domains`, { domain: 'old.acme.example' });
  await send('DELETE', `/api/v1/tenants/${acme}/domains/old.acme.example`);

  const globex = id(await send('POST', '/api/v1/tenants', { name: 'Globex', subdomain: 'globex' }));
  const globexApi = id(
    await send('POST', '/api/v1/origins', { tenant_id: globex, name: 'api', url: 'http://127.0.0.1:11/' }),
  );
  await send('POST', '/api/v1/routes', {
    tenant_id: globex,
    origin_id: globexApi,
    path_pattern: '/*',
    auth_mode: 'public',
  });
  await send('POST', `/api/v1/tenants/${globex}/domains`, { domain: 'globex.example', verified: true });
  await send('DELETE', `/api/v1/tenants/${globex}`);
}

try {
  await recordCommands();
  const log = toStoredLog(await cp.allEvents());
  // What the projectors make of it, from a fresh store written the way the replay test writes it.
  const db = await createTestDatabase();
  const store = createEventStore({ kind: 'postgres', pool: db.pool });
  try {
    await writeStoredLog(store, log.events);
    const projected = await projectLog(store, db.pool);
    await writeFile(`${folder}/events.json`, `${JSON.stringify(log, null, 2)}\n`);
    await writeFile(`${folder}/projected.json`, `${JSON.stringify(projected, null, 2)}\n`);
    const types = [...new Set(log.events.map((event) => event.type))].sort();
    console.log(`${log.events.length} events of ${types.length} types: ${types.join(', ')}`);
  } finally {
    await store.close();
    await db.drop();
  }
} finally {
  await cp.close();
}
