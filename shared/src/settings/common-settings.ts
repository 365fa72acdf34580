import { createPublicKey } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { isWebOrigin } from '../domain/web-origin.js';
import { postgresUrlParameters } from '../postgres/database-url-parameters.js';
import { pemCertificatesProblem, readFileOrIssue } from './setting-file.js';

/**
 * Reusable validators for settings shared by several services. Every service composes its own shape
 * from these (see each service's settings.ts), and `.env.example` documents each name.
 */

const POSTGRES_PROTOCOLS = new Set(['postgres:', 'postgresql:']);

/** Files a PostgreSQL URL may name; node-postgres reads them at each new connection, not at start. */
const POSTGRES_URL_FILES = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * The first file of `?sslrootcert=` / `sslcert` / `sslkey` that cannot be read, or a root certificate
 * file that holds none: found at start, a service would otherwise run on with every connection failing.
 */
function postgresUrlFileProblem(value: string): string | undefined {
  const parameters = postgresUrlParameters(value);
  for (const name of POSTGRES_URL_FILES) {
    // An empty value is none to node-postgres.
    const path = parameters?.get(name);
    if (!path) continue;
    const file = readFileOrIssue(path);
    if (file.issue !== undefined) return `names a ${name} that ${file.issue}`;
    const problem = name === 'sslrootcert' ? pemCertificatesProblem(file.text) : undefined;
    if (problem !== undefined) return `names a sslrootcert that ${problem} (${path})`;
  }
  return undefined;
}

export const postgresUrl = z
  .string()
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return POSTGRES_PROTOCOLS.has(url.protocol) && url.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: 'must be a postgres:// URL such as postgres://user:pass@127.0.0.1:55432/vantageedge' },
  )
  .superRefine((value, context) => {
    const problem = postgresUrlFileProblem(value);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
  });

export const redisUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'redis:' || url.protocol === 'rediss:';
    } catch {
      return false;
    }
  },
  { message: 'must be a redis:// or rediss:// URL' },
);

export const port = z.coerce.number().int().min(0).max(65535);

export const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== ''),
);

/**
 * `host:port` (a bracketed IPv6 literal as host keeps its colons apart from the port's); without a
 * port `defaultPort` when given. The host as a client connects to it: an IPv6 literal without its
 * brackets. Undefined when it is not one.
 */
export function parseHostPort(
  value: string,
  defaultPort?: number,
): { host: string; port: number } | undefined {
  const address = splitHostPort(value);
  if (address === undefined) return undefined;
  const { host, portText } = address;
  const port =
    portText === undefined ? defaultPort : /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (host === '' || host.includes('/') || port === undefined || !Number.isInteger(port)) return undefined;
  if (port < 1 || port > 65_535) return undefined;
  return { host, port };
}

/**
 * The host and the port's text of `[IPv6]:port`, `[IPv6]`, `host:port` or `host`. A bare IPv6 literal is
 * a host without a port: its last group is no port (`fd00::2` is not host `fd00:`, port 2).
 */
function splitHostPort(value: string): { host: string; portText?: string } | undefined {
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    const host = value.slice(1, close);
    const rest = value.slice(close + 1);
    if (close < 0 || !isIPv6(host) || (rest !== '' && !rest.startsWith(':'))) return undefined;
    return rest === '' ? { host } : { host, portText: rest.slice(1) };
  }
  if (isIPv6(value)) return { host: value };
  const separator = value.lastIndexOf(':');
  if (separator < 0) return { host: value };
  if (value.indexOf(':') !== separator) return undefined;
  return { host: value.slice(0, separator), portText: value.slice(separator + 1) };
}

/**
 * The address at `index` as a settings error may show it: whatever precedes an `@` (a URL's scheme,
 * user name and password written where only host:port belongs) is left out, since error lines end up
 * in logs. When another address of the list has one, this one may be the start of a password with a
 * comma in it: it is named by its place only.
 */
function withoutUserInformation(addresses: readonly string[], index: number): string {
  const address = addresses[index]!;
  const at = address.lastIndexOf('@');
  if (at >= 0) return `(user information not shown)@${address.slice(at + 1)}`;
  if (addresses.some((other) => other.includes('@')))
    return `address ${index + 1} (not shown: the list has user information)`;
  return address;
}

/**
 * Comma-separated `host:port` addresses (Kafka brokers, Redis Cluster seeds), at least one, each checked
 * at start-up: a malformed one would otherwise fail deep inside the client, or quietly never connect.
 */
export function hostPortList({ defaultPort }: { defaultPort?: number } = {}) {
  return commaList.pipe(
    z
      .array(z.string())
      .min(1, 'must name at least one host:port')
      .superRefine((addresses, ctx) => {
        const wrong = addresses.findIndex((address) => parseHostPort(address, defaultPort) === undefined);
        if (wrong >= 0)
          ctx.addIssue({
            code: 'custom',
            message: `must be comma-separated host:port addresses with a port in 1..65535 (${withoutUserInformation(addresses, wrong)} is not one)`,
          });
      }),
  );
}

export const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/**
 * Clerk's PEM public key (SPKI), checked at start-up: a key that does not parse would answer every
 * sign-in 401. Line breaks may be written as \n (one-line env files).
 */
export const clerkJwtKey = z
  .string()
  .transform((value) => value.replaceAll('\\n', '\n'))
  .refine(isPublicKeyPem, { message: 'must be a PEM public key (SPKI)' });

function isPublicKeyPem(value: string): boolean {
  if (!value.includes('BEGIN PUBLIC KEY')) return false;
  try {
    createPublicKey(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Comma-separated origins of web apps whose Clerk tokens are taken (CLERK_AUTHORIZED_PARTIES): Clerk
 * copies the Origin of the page it mints a token for into `azp` and compares it with each entry as a
 * string, so an entry must be written exactly as browsers send Origin or it matches no token.
 */
export const clerkAuthorizedParties = commaList.pipe(
  z.array(
    z
      .string()
      .refine(
        isWebOrigin,
        'must be comma-separated origins as browsers send them: scheme://host[:port], lower case, no path or trailing slash (e.g. https://admin.example.com)',
      ),
  ),
);

/**
 * The `iss` of the Clerk instance's session tokens (CLERK_ISSUER): its Frontend API URL, e.g.
 * https://clerk.example.com, or https://<name>.clerk.accounts.dev for a development instance.
 */
export const clerkIssuer = z
  .string()
  .refine(
    isWebOrigin,
    'must be the Clerk instance’s Frontend API URL as its tokens carry it in iss: scheme://host, lower case, no path or trailing slash (e.g. https://clerk.example.com)',
  );

export const logLevel = z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']);

/** Settings every service reads: logging and telemetry. */
export const observabilitySettings = {
  LOG_LEVEL: logLevel.default('info'),
  OTEL_ENABLED: booleanFlag.default(false),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_SERVICE_NAME: z.string().optional(),
};

/** Local infrastructure defaults: the ports `make infra-up` binds on 127.0.0.1. */
export const LOCAL_DEFAULTS = {
  DATABASE_URL: 'postgres://vantageedge:vantageedge@127.0.0.1:55432/vantageedge',
  REDIS_URL: 'redis://127.0.0.1:56379',
  KAFKA_BROKERS: '127.0.0.1:59092',
} as const;

const DOMAIN_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Comma-separated domain names, lower-cased. */
export const domainList = commaList.pipe(
  z
    .array(
      z
        .string()
        .transform((value) => value.toLowerCase())
        .pipe(z.string().regex(DOMAIN_NAME, 'must be a comma-separated list of domain names')),
    )
    .min(1, 'must name at least one domain'),
);

export const DEFAULT_PLATFORM_BASE_DOMAINS: readonly string[] = ['vantageedge.dev', 'localhost'];

/**
 * The platform's base domains (`<subdomain>.<base>` is a tenant's host), shared by the control plane
 * (a custom domain may not be, or be under, one of them) and the gateways (host resolution).
 * GATEWAY_BASE_DOMAINS is the earlier name, still read when PLATFORM_BASE_DOMAINS is unset.
 */
export const platformBaseDomainSettings = {
  PLATFORM_BASE_DOMAINS: domainList.optional(),
  GATEWAY_BASE_DOMAINS: domainList.optional(),
};

export function platformBaseDomains(config: {
  PLATFORM_BASE_DOMAINS?: readonly string[] | undefined;
  GATEWAY_BASE_DOMAINS?: readonly string[] | undefined;
}): readonly string[] {
  return config.PLATFORM_BASE_DOMAINS ?? config.GATEWAY_BASE_DOMAINS ?? DEFAULT_PLATFORM_BASE_DOMAINS;
}

/**
 * GATEWAY_REDIS_KEY_PREFIX, read by the gateways and the control plane alike. Every key of a tenant
 * carries its `{tenant_id}` hash tag, so on a Redis Cluster a tenant's keys share one slot and one
 * master (and its circuit, shared/src/redis/tenant-node.ts). Redis hashes a key by what lies between
 * its first `{` and the next `}`: a `{` in the prefix would be that first one, putting every tenant on
 * one slot.
 */
export const redisKeyPrefix = z
  .string()
  .max(100)
  .refine((prefix) => !prefix.includes('{'), {
    message:
      "must not contain '{': on a Redis Cluster it would become the keys' hash tag, every tenant's keys on one slot",
  })
  .default('');
