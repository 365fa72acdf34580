import { postgresUrlParameters } from './database-url-parameters.js';

type Env = Record<string, string | undefined>;

/**
 * What a service logs at start when its PostgreSQL connections are encrypted but the server's
 * certificate is not verified, as node-postgres reads DATABASE_URL (and PGSSLMODE when the URL sets no
 * TLS parameter): anyone on the path can pose as the database, and read or change every tenant's
 * configuration on the way. Names the parameters that turned verification off, never the URL (its
 * password).
 */
export function databaseTlsWarning(url: string, env: Env = process.env): string | undefined {
  const unverifiedBy = verificationTurnedOffBy(url, env);
  if (unverifiedBy === undefined) return undefined;
  return `${unverifiedBy}: connections to PostgreSQL are encrypted but the server's certificate is not verified, so anyone on the path can pose as the database; use sslmode=verify-full (with sslrootcert for a private CA)`;
}

/**
 * The warning for a command-line tool (the migrator, a replay, a republish, the seeder): one line on
 * stderr, before it connects, `tool: warning: …`. Nothing when the URL verifies the server.
 */
export function warnOfUnverifiedDatabase(tool: string, url: string, env: Env = process.env): void {
  const warning = databaseTlsWarning(url, env);
  if (warning) process.stderr.write(`${tool}: warning: ${warning}\n`);
}

/** node-postgres 8's rules (pg-connection-string and its ConnectionParameters). */
function verificationTurnedOffBy(url: string, env: Env): string | undefined {
  const parameters = postgresUrlParameters(url);
  if (parameters === undefined) return undefined;
  // An empty value is none to node-postgres.
  const given = (name: string) => parameters.get(name) || undefined;
  const sslmode = given('sslmode');
  if (sslmode !== undefined || given('sslcert') || given('sslkey') || given('sslrootcert')) {
    if (given('uselibpqcompat') !== 'true')
      return sslmode === 'no-verify' ? "DATABASE_URL's sslmode=no-verify" : undefined;
    // libpq's meaning: prefer and require encrypt without verifying (require with a root CA verifies the chain).
    const unverified = sslmode === 'prefer' || (sslmode === 'require' && !given('sslrootcert'));
    return unverified ? `DATABASE_URL's sslmode=${sslmode} with uselibpqcompat=true` : undefined;
  }
  const ssl = parameters.get('ssl');
  if (ssl === 'no-verify') return "DATABASE_URL's ssl=no-verify";
  if (ssl !== undefined || given('sslnegotiation') === 'direct') return undefined;
  return env['PGSSLMODE'] === 'no-verify' ? 'PGSSLMODE=no-verify (DATABASE_URL sets no sslmode)' : undefined;
}
