import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The migrator as operators run it (`make migrate-up` / `migrate-down`): a process, its output, its exit code. */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'migrations', 'src', 'cli.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `cwd`: where it runs, and so the `.env` it reads; default outside the repo (a developer's .env cannot leak in). */
function migrator(args: string[], env: Record<string, string | undefined>, cwd = '/'): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...serviceNodeArgs(CLI), ...args],
      { env: { ...process.env, ...env }, cwd, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

// Each run starts a node process (several seconds through tsx on 2 busy cores), hence the generous timeout.
describe('migrations/src/cli.ts', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('rejects a malformed DATABASE_URL with one line naming it, and a non-zero exit', async () => {
    const run = await migrator(['up'], { DATABASE_URL: 'nonsense' });
    expect(run.code).not.toBe(0);
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toMatch(/^migrator: invalid configuration: DATABASE_URL /);
    expect(run.stdout).toBe('');
  });

  it('reports an unreachable database in one line that points at DATABASE_URL, without the password', async () => {
    const run = await migrator(['up'], { DATABASE_URL: 'postgres://someone:s3cret@127.0.0.1:1/nowhere' });
    expect(run.code).not.toBe(0);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(
        /^migrator: cannot connect to PostgreSQL at 127\.0\.0\.1:1\/nowhere \(check DATABASE_URL\)/,
      ),
    ]);
    expect(run.stderr).not.toContain('s3cret');
  });

  it('applies the project migrations, then reports up to date, then rolls one back', async () => {
    const up = await migrator(['up'], { DATABASE_URL: db.url });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const applied = lines(up.stdout);
    expect(applied.length).toBeGreaterThan(0);
    expect(applied.every((line) => /^applied \d+_[a-z0-9_]+$/.test(line))).toBe(true);

    const again = await migrator(['up'], { DATABASE_URL: db.url });
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('migrations: up to date');

    const down = await migrator(['down', '1'], { DATABASE_URL: db.url });
    expect(down.code).toBe(0);
    expect(down.stdout.trim()).toMatch(/^rolled back \d+_[a-z0-9_]+$/);
    const newest = applied.at(-1)?.replace(/^applied /, '');
    expect(down.stdout).toContain(newest);

    const reapply = await migrator(['up'], { DATABASE_URL: db.url });
    expect(lines(reapply.stdout)).toEqual([`applied ${newest}`]);
  });

  describe('with a .env in its working directory', () => {
    let directory: string;
    beforeAll(() => {
      directory = mkdtempSync(path.join(tmpdir(), 'migrator-env-'));
    });
    afterAll(() => rmSync(directory, { recursive: true, force: true }));
    const withoutDatabaseUrl = { DATABASE_URL: undefined, TEST_DATABASE_URL: undefined };

    it('reads the first setting of a .env saved with a byte order mark (as dotenv did)', async () => {
      writeFileSync(path.join(directory, '.env'), '\ufeffDATABASE_URL=nonsense\n');
      const run = await migrator(['sideways'], withoutDatabaseUrl, directory);
      expect(lines(run.stderr)).toEqual([
        expect.stringMatching(/^migrator: invalid configuration: DATABASE_URL /),
      ]);
      expect(run.code).toBe(1);
    });

    it('names a .env it cannot read in one line, and exits non-zero', async () => {
      rmSync(path.join(directory, '.env'), { force: true });
      mkdirSync(path.join(directory, '.env'));
      const run = await migrator(['up'], withoutDatabaseUrl, directory);
      expect(lines(run.stderr)).toEqual([
        expect.stringMatching(/^invalid configuration: \.env cannot be read: /),
      ]);
      expect(run.code).toBe(1);
    });
  });

  it('rejects an unknown command with usage and exit code 2', async () => {
    const run = await migrator(['sideways'], { DATABASE_URL: db.url });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('usage: migrate up | down [steps]');
  });
});
