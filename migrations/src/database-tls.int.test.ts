import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createPrivatePostgres,
  type PrivatePostgres,
} from '@vantageedge/shared/event-store/postgres/testing/private-postgres';
import { createLivePool } from '@vantageedge/shared/postgres/connection-liveness';
import { endPool } from '@vantageedge/shared/postgres/end-pool';
import { onNewConnection } from '@vantageedge/shared/postgres/lost-connections';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateUp } from './runner.js';

/**
 * Managed PostgreSQL (RDS, Cloud SQL, Neon) is reached with DATABASE_URL's sslmode and sslrootcert, as
 * node-postgres 8 reads them: every pool the services make (createLivePool: control plane, projectors,
 * read models, event store, and the connections made like the pool's) and the migrator must encrypt and
 * verify the server, and `sslmode=require` must not connect to a server it cannot verify.
 */

let server: PrivatePostgres;
let dir: string;
let caFile: string;

const withParams = (params: string) => `${server.url}?${params}`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 've-pg-tls-'));
  const ca = await createTestCa('PostgreSQL Test CA');
  const leaf = await issueTestCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, ca.certificatePem);
  server = await createPrivatePostgres({ tls: leaf });
}, 60_000);

afterAll(async () => {
  await server?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('PostgreSQL over TLS', () => {
  it('sslmode=verify-full with sslrootcert: the migrator and a service pool connect encrypted', async () => {
    const url = withParams(`sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`);
    await migrateUp(url);

    const pool = createLivePool({ connectionString: url, max: 2 });
    try {
      const encrypted = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()';
      expect((await pool.query<{ ssl: boolean }>(encrypted)).rows[0]?.ssl).toBe(true);
      expect((await pool.query('select count(*) from schema_migrations')).rows[0]).toBeDefined();
      const own = await onNewConnection(pool, { readOnly: true }, (client) =>
        client.query<{ ssl: boolean }>(encrypted),
      );
      expect(own.rows[0]?.ssl).toBe(true);
    } finally {
      await endPool(pool);
    }
  });

  it('sslmode=require does not connect to a server whose certificate it cannot verify', async () => {
    await expect(migrateUp(withParams('sslmode=require'))).rejects.toThrow(
      /cannot connect to PostgreSQL at 127\.0\.0\.1.*certificate/,
    );
    await expect(migrateUp(withParams('sslmode=require'))).rejects.not.toThrow(/vantageedge:vantageedge/);
  });
});
