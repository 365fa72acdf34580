import { loadMigrations } from '@vantageedge/migrations/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_INFRA } from './infrastructure.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

describe('test harness: PostgreSQL', () => {
  let first: TestDatabase;
  let second: TestDatabase;

  beforeAll(async () => {
    [first, second] = await Promise.all([createTestDatabase(), createTestDatabase({ migrate: false })]);
  });

  afterAll(async () => {
    await Promise.all([first?.drop(), second?.drop()]);
  });

  it('gives each test file a fresh database with every project migration applied', async () => {
    const { rows } = await first.pool.query<{ version: string }>(
      'select version from schema_migrations order by version',
    );
    expect(rows.map((row) => Number(row.version))).toEqual((await loadMigrations()).map((m) => m.version));
    expect(first.url).toContain(`/${first.name}`);
    expect(new URL(first.url).port).toBe(new URL(TEST_INFRA.databaseUrl).port);
  });

  it('writes and reads back, and no other test database sees the rows', async () => {
    await first.pool.query('create table harness_probe (id int primary key, note text)');
    await first.pool.query(`insert into harness_probe values (1, 'written by the harness test')`);
    const { rows } = await first.pool.query('select id, note from harness_probe');
    expect(rows).toEqual([{ id: 1, note: 'written by the harness test' }]);
    await expect(second.pool.query('select * from harness_probe')).rejects.toThrow(/does not exist/);
  });

  it('drop() removes the database', async () => {
    const extra = await createTestDatabase({ migrate: false });
    await extra.drop();
    const { rows } = await first.pool.query('select 1 from pg_database where datname = $1', [extra.name]);
    expect(rows).toEqual([]);
  });
});
