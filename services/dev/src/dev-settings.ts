import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLoopbackHost } from '@vantageedge/shared/net/loopback-host';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import {
  DEV_API_KEY_PEPPER,
  DEV_CERTIFICATE_ENCRYPTION_KEY,
} from '@vantageedge/shared/settings/development-secrets';

/**
 * `make dev`'s settings: the environment (and .env) always win; what is unset gets a development
 * default. Pure, so the rules are unit-tested (dev-settings.unit.test.ts).
 */

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export { DEV_API_KEY_PEPPER, DEV_CERTIFICATE_ENCRYPTION_KEY };
/** The platform admin make dev-token signs for by default. */
export const DEV_ADMIN_USER_ID = 'user_dev_admin';

export const DEV_DEFAULTS = {
  CONTROL_PLANE_PORT: '8080',
  GATEWAY_PORT: '8000',
  GATEWAY_ADMIN_PORT: '8001',
  GATEWAY_TLS_PORT: '8443',
  DEMO_ORIGIN_PORT: '8002',
  VANTAGEEDGE_DEV_PG_PORT: '55433',
  CONTROL_PLANE_HOST: '127.0.0.1',
  GATEWAY_HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
} as const;

type Env = Record<string, string | undefined>;

const isSet = (value: string | undefined): value is string => value !== undefined && value !== '';

/** Where make dev keeps its data (embedded PostgreSQL, the dev key pair): VANTAGEEDGE_DATA_DIR or <repo>/.data. */
export function devDataDir(env: Env): string {
  return path.resolve(
    isSet(env['VANTAGEEDGE_DATA_DIR']) ? env['VANTAGEEDGE_DATA_DIR'] : path.join(REPO_ROOT, '.data'),
  );
}

/**
 * The environment make dev runs with: every setting already given is kept; unset ones get the dev
 * defaults. SNAPSHOT_BUS is memory unless KAFKA_BROKERS is set; REDIS_URL and DATABASE_URL stay unset
 * unless given (in-memory stores, embedded PostgreSQL); dev tokens are accepted (VANTAGEEDGE_DEV_MODE);
 * origins on loopback addresses are allowed (ORIGIN_BLOCKED_CIDRS without the loopback ranges).
 */
export function devEnvironment(env: Env): Env {
  const out: Env = { ...env };
  const setDefault = (name: string, value: string) => {
    if (!isSet(out[name])) out[name] = value;
  };
  for (const [name, value] of Object.entries(DEV_DEFAULTS)) setDefault(name, value);
  setDefault('API_KEY_PEPPER', DEV_API_KEY_PEPPER);
  setDefault('VANTAGEEDGE_DEV_MODE', 'true');
  setDefault('CERTIFICATE_ENCRYPTION_KEY', DEV_CERTIFICATE_ENCRYPTION_KEY);
  setDefault('PLATFORM_ADMIN_USER_IDS', DEV_ADMIN_USER_ID);
  setDefault('SNAPSHOT_BUS', isSet(env['KAFKA_BROKERS']) ? 'kafka' : 'memory');
  // The demo origin (and any origin a developer starts) is on 127.0.0.1: loopback origins are allowed
  // here; link-local and unspecified addresses, and the listeners of this process, stay refused.
  setDefault('ORIGIN_BLOCKED_CIDRS', ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','));
  if (!isSet(out['GATEWAY_BASE_DOMAINS'])) setDefault('PLATFORM_BASE_DOMAINS', 'vantageedge.dev,localhost');
  // The single process reports metrics on the gateway's admin port; the projector's own port stays off.
  setDefault('SNAPSHOT_PROJECTOR_METRICS_PORT', '0');
  return out;
}

/**
 * The Clerk users the seed makes owners of the demo tenant: make dev's platform admins (the users
 * `make dev-token` signs for), so the demo's JWT route accepts their tokens.
 */
export function demoUserIds(env: Env): string[] {
  return (devEnvironment(env)['PLATFORM_ADMIN_USER_IDS'] ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

/** make dev's listeners and their defaults (GATEWAY_TLS_PORT listens on GATEWAY_HOST). */
const LISTENER_HOSTS = {
  CONTROL_PLANE_HOST: '0.0.0.0',
  GATEWAY_HOST: '0.0.0.0',
  GATEWAY_ADMIN_HOST: '127.0.0.1',
} as const;

/**
 * The listener settings of `env` (as devEnvironment returns it) that open make dev to other machines,
 * for the banner's warning: its gateway reaches this machine's loopback servers as origins, and the
 * demo key and the development pepper are published.
 */
export function exposedListeners(env: Env): string[] {
  return Object.entries(LISTENER_HOSTS).flatMap(([setting, fallback]) => {
    const host = isSet(env[setting]) ? env[setting] : fallback;
    return isLoopbackHost(host) ? [] : [`${setting}=${host}`];
  });
}

/** Which parts run embedded/in memory and which are real, for the banner. */
export function describeParts(env: Env): string[] {
  return [
    `database:      ${isSet(env['DATABASE_URL']) ? `DATABASE_URL (${redact(env['DATABASE_URL'])})` : 'embedded PostgreSQL'}`,
    `event store:   ${env['EVENT_STORE'] === 'eventstoredb' ? `EventStoreDB (${redact(env['EVENTSTOREDB_URL'] ?? '')})` : env['EVENT_STORE'] === 'memory' ? 'in memory (lost on exit)' : 'PostgreSQL'}`,
    `snapshot bus:  ${env['SNAPSHOT_BUS'] === 'kafka' ? `Kafka (${env['KAFKA_BROKERS'] ?? 'default brokers'})` : 'in memory'}`,
    `limits, cache: ${isSet(env['REDIS_URL']) ? `Redis (${redact(env['REDIS_URL'])})` : 'in memory'}`,
  ];
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    // Several hosts (esdb+discover://u:p@a:2113,b:2113) are no WHATWG URL: hide the userinfo's password.
    return url.replace(/^([^:/]+:\/\/[^:@/]*:)[^/]*@/, '$1***@');
  }
}
