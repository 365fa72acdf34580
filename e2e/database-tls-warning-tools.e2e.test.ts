import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';
import { describe, expect, it } from 'vitest';

/**
 * The operator's tools that connect to DATABASE_URL say so, as the services do at start, when its
 * connections would be encrypted without the server's certificate being verified: one line, before
 * connecting, naming the parameter and never the URL's password. (Nothing listens on port 1: each tool
 * then fails to connect, which is not what is checked here.)
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const UNVERIFIED_URL = 'postgres://ve:planted-db-password@127.0.0.1:1/none?sslmode=no-verify';
const WARNING =
  "DATABASE_URL's sslmode=no-verify: connections to PostgreSQL are encrypted but the server's certificate is not verified";

const TOOLS = [
  { tool: 'migrator', entry: 'migrations/src/cli.ts', args: ['up'] },
  { tool: 'replay', entry: 'projections/src/read-models/replay-cli.ts', args: [] },
  { tool: 'republish-snapshots', entry: 'projections/src/snapshots/republish-cli.ts', args: [] },
  { tool: 'seed', entry: 'services/dev/src/seed-cli.ts', args: [] },
] as const;

function run(entry: string, args: readonly string[], env: Record<string, string>) {
  return new Promise<{ code: number; output: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [...serviceNodeArgs(path.join(ROOT, entry)), ...args],
      // Outside the repository: a developer's .env cannot leak in.
      { env: { ...process.env, ...env }, cwd: '/', timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: stdout + stderr, stderr });
      },
    );
  });
}

describe('a tool whose DATABASE_URL does not verify the server warns before connecting', {
  timeout: 120_000,
}, () => {
  it.each(TOOLS)('$tool: one line on stderr, without the password', async ({ tool, entry, args }) => {
    const result = await run(entry, args, { DATABASE_URL: UNVERIFIED_URL, PGSSLMODE: '' });
    const warnings = result.stderr.split('\n').filter((line) => line.includes('is not verified'));
    expect(warnings).toEqual([
      `${tool}: warning: ${WARNING}, so anyone on the path can pose as the database; use sslmode=verify-full (with sslrootcert for a private CA)`,
    ]);
    expect(result.output).not.toMatch(/planted-db-password/);
    expect(result.code).not.toBe(0);
  });

  it('make dev given such a DATABASE_URL logs it as a warning', async () => {
    const result = await run('services/dev/src/main.ts', [], { DATABASE_URL: UNVERIFIED_URL, PGSSLMODE: '' });
    const warnings = result.output.split('\n').filter((line) => line.includes(WARNING));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/warn/i);
    expect(result.output).not.toMatch(/planted-db-password/);
    expect(result.code).not.toBe(0);
  });

  it('a URL that verifies the server gives no warning', async () => {
    const result = await run('migrations/src/cli.ts', ['up'], {
      DATABASE_URL: 'postgres://ve:planted-db-password@127.0.0.1:1/none?sslmode=verify-full',
      PGSSLMODE: '',
    });
    expect(result.stderr).not.toMatch(/is not verified/);
    expect(result.code).not.toBe(0);
  });
});

describe('make dev on a Kafka snapshot bus that authenticates without TLS', { timeout: 120_000 }, () => {
  it('logs, as the projector and the gateway do, that the snapshots travel in clear', async () => {
    const result = await run('services/dev/src/main.ts', [], {
      DATABASE_URL: 'postgres://ve:x@127.0.0.1:1/none?sslmode=disable',
      PGSSLMODE: '',
      KAFKA_BROKERS: '127.0.0.1:1',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'vantageedge',
      KAFKA_SASL_PASSWORD: 'planted-kafka-password',
    });
    const warnings = result.output.split('\n').filter((line) => line.includes('are not encrypted'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/warn/i);
    expect(warnings[0]).toContain('KAFKA_SASL_MECHANISM');
    expect(result.output).not.toMatch(/planted-kafka-password/);
    expect(result.code).not.toBe(0);
  });
});
