import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, MigrationError, migrateDown, migrateUp } from './runner.js';

/** Each test gets an empty database and its own folder of migration files. */
let db: TestDatabase;
let dir: string;

async function writeMigrations(files: Record<string, string>): Promise<void> {
  for (const [file, sql] of Object.entries(files)) await writeFile(path.join(dir, file), sql);
}

async function recorded(): Promise<Array<{ version: number; name: string }>> {
  const { rows } = await db.pool.query<{ version: string; name: string }>(
    'select version, name from schema_migrations order by version',
  );
  return rows.map((row) => ({ version: Number(row.version), name: row.name }));
}

async function columns(table: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ column_name: string }>(
    `select column_name from information_schema.columns where table_name = $1 order by ordinal_position`,
    [table],
  );
  return rows.map((row) => row.column_name);
}

const TWO_MIGRATIONS = {
  '0001_create_tenants.up.sql': 'create table tenants (id text primary key);',
  '0001_create_tenants.down.sql': 'drop table tenants;',
  // Depends on 0001: only works when applied after it.
  '0002_add_tenant_name.up.sql': "alter table tenants add column name text not null default '';",
  '0002_add_tenant_name.down.sql': 'alter table tenants drop column name;',
};

beforeEach(async () => {
  db = await createTestDatabase({ migrate: false });
  dir = await mkdtemp(path.join(os.tmpdir(), 've-migrations-'));
});

afterEach(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('migrateUp', () => {
  it('applies pending migrations in version order and records each one', async () => {
    await writeMigrations({ ...TWO_MIGRATIONS, 'README.txt': 'not a migration' });
    const result = await migrateUp(db.url, { dir });
    expect(result.applied).toEqual([
      { version: 1, name: 'create_tenants' },
      { version: 2, name: 'add_tenant_name' },
    ]);
    expect(await columns('tenants')).toEqual(['id', 'name']);
    expect(await recorded()).toEqual(result.applied);
  });

  it('is safe to re-run: a second run applies nothing and changes nothing', async () => {
    await writeMigrations(TWO_MIGRATIONS);
    await migrateUp(db.url, { dir });
    await db.pool.query(`insert into tenants (id, name) values ('t1', 'Acme')`);
    expect((await migrateUp(db.url, { dir })).applied).toEqual([]);
    expect(await recorded()).toHaveLength(2);
    expect((await db.pool.query('select id, name from tenants')).rows).toEqual([{ id: 't1', name: 'Acme' }]);
  });

  it('applies only the migrations added since the last run, and stops at a target', async () => {
    await writeMigrations(TWO_MIGRATIONS);
    expect((await migrateUp(db.url, { dir, target: 1 })).applied).toEqual([
      { version: 1, name: 'create_tenants' },
    ]);
    expect(await columns('tenants')).toEqual(['id']);
    expect((await migrateUp(db.url, { dir })).applied).toEqual([{ version: 2, name: 'add_tenant_name' }]);
  });

  it('rolls back a failing migration completely, keeps the earlier ones, and names the failure', async () => {
    await writeMigrations({
      ...TWO_MIGRATIONS,
      // The first statement succeeds; the second fails: neither may remain.
      '0003_broken.up.sql': 'create table audit (id int); insert into no_such_table values (1);',
    });
    const failure = await migrateUp(db.url, { dir }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as MigrationError).message).toMatch(
      /^migration 0003_broken \(up\) failed: .*no_such_table/,
    );
    expect(await recorded()).toEqual([
      { version: 1, name: 'create_tenants' },
      { version: 2, name: 'add_tenant_name' },
    ]);
    expect(await columns('audit')).toEqual([]);
  });

  it('refuses a folder where one version has two names, before touching the database', async () => {
    await writeMigrations({
      '0001_create_tenants.up.sql': 'create table tenants (id text);',
      '0001_create_customers.down.sql': 'drop table customers;',
    });
    await expect(migrateUp(db.url, { dir })).rejects.toThrow(/migration 1 has two names/);
    await expect(db.pool.query('select 1 from schema_migrations')).rejects.toThrow(/does not exist/);
  });

  it('lets processes that start together apply each migration exactly once', async () => {
    await writeMigrations({
      // Slow and not idempotent: without the advisory lock a second runner would fail or duplicate.
      '0001_slow_seed.up.sql':
        "create table settings (key text primary key, value text); select pg_sleep(0.5); insert into settings values ('schema', 'v1');",
    });
    const runs = await Promise.all(Array.from({ length: 4 }, () => migrateUp(db.url, { dir })));
    expect(runs.map((run) => run.applied.length).sort()).toEqual([0, 0, 0, 1]);
    expect((await db.pool.query('select key, value from settings')).rows).toEqual([
      { key: 'schema', value: 'v1' },
    ]);
    expect(await recorded()).toEqual([{ version: 1, name: 'slow_seed' }]);
  });
});

describe('migrateDown', () => {
  it('rolls back the newest migration, then more steps, and up applies them again', async () => {
    await writeMigrations(TWO_MIGRATIONS);
    await migrateUp(db.url, { dir });

    expect((await migrateDown(db.url, { dir })).applied).toEqual([{ version: 2, name: 'add_tenant_name' }]);
    expect(await columns('tenants')).toEqual(['id']);
    expect(await recorded()).toEqual([{ version: 1, name: 'create_tenants' }]);

    await migrateUp(db.url, { dir });
    expect((await migrateDown(db.url, { dir, steps: 2 })).applied.map((m) => m.version)).toEqual([2, 1]);
    expect(await columns('tenants')).toEqual([]);
    expect(await recorded()).toEqual([]);
    expect((await migrateDown(db.url, { dir })).applied).toEqual([]);

    expect((await migrateUp(db.url, { dir })).applied).toHaveLength(2);
  });

  it('refuses to roll back past a migration without a .down.sql and changes nothing', async () => {
    await writeMigrations({
      '0001_create_tenants.up.sql': 'create table tenants (id text primary key);',
      '0002_add_tenant_name.up.sql': TWO_MIGRATIONS['0002_add_tenant_name.up.sql'],
      '0002_add_tenant_name.down.sql': TWO_MIGRATIONS['0002_add_tenant_name.down.sql'],
    });
    await migrateUp(db.url, { dir });
    await expect(migrateDown(db.url, { dir, steps: 2 })).rejects.toThrow(
      'migration 0001_create_tenants cannot be rolled back: no .down.sql file',
    );
    expect(await columns('tenants')).toEqual(['id', 'name']);
    expect(await recorded()).toHaveLength(2);
  });
});

describe('the project migrations in migrations/sql', () => {
  let projectDb: TestDatabase;
  beforeAll(async () => {
    projectDb = await createTestDatabase({ migrate: false });
  });
  afterAll(async () => {
    await projectDb.drop();
  });

  it('apply, roll back completely, and apply again', async () => {
    const first = await migrateUp(projectDb.url, { dir: DEFAULT_MIGRATIONS_DIR });
    expect(first.applied.length).toBeGreaterThan(0);
    const down = await migrateDown(projectDb.url, {
      dir: DEFAULT_MIGRATIONS_DIR,
      steps: first.applied.length,
    });
    expect(down.applied.map((m) => m.version)).toEqual(first.applied.map((m) => m.version).reverse());
    const { rows } = await projectDb.pool.query('select version from schema_migrations');
    expect(rows).toEqual([]);
    // Applying again after the rollback proves every .down.sql removed what its .up.sql creates
    // (a leftover table, type or function would make the non-idempotent `create` fail).
    expect((await migrateUp(projectDb.url, { dir: DEFAULT_MIGRATIONS_DIR })).applied).toEqual(first.applied);
  });
});
