import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../testing/test-certificates.js';
import { databaseTlsWarning } from './database-url-security.js';

// node-postgres's own reading of a connection string and PGSSLMODE: what its pools will do.
const ConnectionParameters = createRequire(import.meta.url)('pg/lib/connection-parameters') as new (config: {
  connectionString: string;
}) => { ssl: unknown };

const PASSWORD = 'planted-db-password';
const BASE = `postgres://ve:${PASSWORD}@db.internal:5432/vantageedge`;
const BARE_PERCENT_BASE = 'postgres://ve:100%secure@db.internal:5432/vantageedge';
let dir: string;
let caFile: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'database-url-security-'));
  caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, (await createTestCa('Database Test CA')).certificatePem);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pgSkipsVerification(url: string, pgSslMode: string | undefined): boolean {
  const saved = process.env.PGSSLMODE;
  if (pgSslMode === undefined) delete process.env.PGSSLMODE;
  else process.env.PGSSLMODE = pgSslMode;
  try {
    const { ssl } = new ConnectionParameters({ connectionString: url });
    return (
      typeof ssl === 'object' &&
      ssl !== null &&
      (ssl as { rejectUnauthorized?: unknown }).rejectUnauthorized === false
    );
  } finally {
    if (saved === undefined) delete process.env.PGSSLMODE;
    else process.env.PGSSLMODE = saved;
  }
}

describe('DATABASE_URL connections that do not verify the server', () => {
  it('are named in a warning exactly when node-postgres would not verify the certificate', () => {
    const queries = [
      '',
      '?sslmode=disable',
      '?sslmode=verify-full',
      '?sslmode=require',
      '?sslmode=prefer',
      '?sslmode=no-verify',
      '?sslmode=verify-full&sslmode=no-verify',
      '?sslmode=no-verify&sslmode=verify-full',
      '?ssl=true',
      '?ssl=no-verify',
      '?ssl=no-verify&sslmode=verify-full',
      '?uselibpqcompat=true&sslmode=require',
      '?uselibpqcompat=true&sslmode=prefer',
      '?uselibpqcompat=true&sslmode=verify-full',
      '?uselibpqcompat=true&sslmode=disable',
      '?uselibpqcompat=true&sslmode=no-verify',
      '?uselibpqcompat=TRUE&sslmode=require',
      '?uselibpqcompat=true&sslmode=require&sslrootcert=CA',
      '?uselibpqcompat=true&sslmode=require&sslrootcert=',
      '?sslrootcert=CA',
      '?sslmode=no-verify&sslrootcert=CA',
      '?sslnegotiation=direct',
    ];
    // A bare `%` in the password: node-postgres re-spells the URL, and reads escapes of letters as written.
    const bareEscape = [
      '?sslmode=no%2Dverify',
      '?ssl%6Dode=no-verify',
      '?uselibpq%63ompat=true&sslmode=prefer',
    ];
    const urls = [
      ...queries.map((query) => ({ base: BASE, query })),
      ...bareEscape.map((query) => ({ base: BARE_PERCENT_BASE, query })),
    ];
    const rows = urls.flatMap(({ base, query }) =>
      [undefined, 'no-verify', 'require'].map((pgSslMode) => {
        const url = `${base}${query.replace('sslrootcert=CA', `sslrootcert=${encodeURIComponent(caFile)}`)}`;
        return {
          query: base === BASE ? query : `(a bare % in the password) ${query}`,
          pgSslMode,
          warned: databaseTlsWarning(url, { PGSSLMODE: pgSslMode }) !== undefined,
          unverified: pgSkipsVerification(url, pgSslMode),
        };
      }),
    );
    expect(rows.filter((row) => row.warned !== row.unverified)).toEqual([]);
    // The table is not one-sided.
    expect(rows.filter((row) => row.unverified).length).toBeGreaterThan(5);
  });

  it("names DATABASE_URL's sslmode (or what turned verification off), never the password", () => {
    expect(databaseTlsWarning(`${BASE}?sslmode=no-verify`, {})).toMatch(
      /^DATABASE_URL's sslmode=no-verify: .*not verified.*sslmode=verify-full/,
    );
    expect(databaseTlsWarning(`${BASE}?uselibpqcompat=true&sslmode=require`, {})).toMatch(
      /^DATABASE_URL's sslmode=require with uselibpqcompat=true: /,
    );
    expect(databaseTlsWarning(`${BASE}?ssl=no-verify`, {})).toMatch(/^DATABASE_URL's ssl=no-verify: /);
    expect(databaseTlsWarning(BASE, { PGSSLMODE: 'no-verify' })).toMatch(/^PGSSLMODE=no-verify /);
    expect(databaseTlsWarning(`${BASE}?sslmode=verify-full`, { PGSSLMODE: 'no-verify' })).toBeUndefined();
    for (const query of ['?sslmode=no-verify', '?ssl=no-verify', '?uselibpqcompat=true&sslmode=prefer'])
      expect(databaseTlsWarning(`${BASE}${query}`, {})).not.toContain(PASSWORD);
  });
});
