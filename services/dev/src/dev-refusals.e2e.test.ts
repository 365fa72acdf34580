import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './dev-settings.js';

/**
 * `make dev` given a bad setting stops as a service does: exit code 1 and one stderr line per setting
 * naming it, never a stack trace. Its database is a test database on the local server; nothing listens.
 */
describe('make dev refuses a bad setting in one line', () => {
  let db: TestDatabase;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 've-dev-refusals-'));
  chmodSync(dataDir, 0o755);

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function refusedStart(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/dev/src/main.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL: '',
        KAFKA_BROKERS: '',
        SNAPSHOT_BUS: '',
        EVENT_STORE: '',
        LOG_LEVEL: 'warn',
        VANTAGEEDGE_DATA_DIR: dataDir,
        CONTROL_PLANE_PORT: '0',
        GATEWAY_PORT: '0',
        GATEWAY_ADMIN_PORT: '0',
        GATEWAY_TLS_PORT: '0',
        DEMO_ORIGIN_PORT: '0',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
  }

  it('a Redis CA file that is not there', async () => {
    const { code, stderr } = await refusedStart({
      REDIS_URL: 'rediss://127.0.0.1:1',
      REDIS_TLS_CA_FILE: '/nonexistent/vantageedge/redis-ca.pem',
    });
    expect(code, stderr).toBe(1);
    expect(stderr.trimEnd().split('\n'), stderr).toEqual([
      'make dev: invalid configuration: REDIS_TLS_CA_FILE cannot be read (/nonexistent/vantageedge/redis-ca.pem: ENOENT)',
    ]);
  });

  it('a default certificate file that is not there', async () => {
    const { code, stderr } = await refusedStart({
      GATEWAY_TLS_CERT_FILE: '/nonexistent/vantageedge/gateway.crt',
      GATEWAY_TLS_KEY_FILE: '/nonexistent/vantageedge/gateway.key',
    });
    expect(code, stderr).toBe(1);
    expect(stderr.trimEnd().split('\n'), stderr).toEqual([
      'make dev: invalid configuration: GATEWAY_TLS_CERT_FILE cannot be read (/nonexistent/vantageedge/gateway.crt: ENOENT)',
    ]);
  });
});
