import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';
import { SettingsError } from '../settings/load-settings.js';
import { pemCertificatesProblem, readSettingFile } from '../settings/setting-file.js';

/**
 * How the platform's Redis clients encrypt and authenticate. A URL's scheme says whether to use TLS
 * (rediss://) and its user:password which ACL user to be (or the AUTH password alone); on a Redis
 * Cluster the seeds (REDIS_CLUSTER_NODES) carry no URL, so the URL's scheme and credentials apply to
 * every node while its host, port and database are not used.
 */
export const redisTlsSettings = {
  /**
   * PEM CA certificates that sign the Redis server's certificate (a private CA), instead of Node's
   * built-in CA list. Only with a rediss:// URL.
   */
  REDIS_TLS_CA_FILE: z.string().min(1).optional(),
};

/** What a client of one server or of every Cluster node is given besides its address. */
export interface RedisConnectionSecurity {
  tls?: ConnectionOptions;
  username?: string;
  password?: string;
}

/**
 * The CA certificates of REDIS_TLS_CA_FILE, read and parsed at start: a missing, unreadable or non-PEM
 * file, or one given with a redis:// URL (which would leave the connections unencrypted while the
 * operator meant them to be), stops the service naming the setting. `urlSetting` names the URL checked.
 */
export function redisTlsCa(
  settings: { REDIS_TLS_CA_FILE?: string | undefined },
  url: { setting: string; value: string | undefined },
): string[] | undefined {
  const path = settings.REDIS_TLS_CA_FILE;
  if (path === undefined) return undefined;
  if (url.value !== undefined && !url.value.startsWith('rediss://'))
    throw new SettingsError([
      {
        setting: 'REDIS_TLS_CA_FILE',
        issue: `is set but ${url.setting} is not a rediss:// URL: use rediss:// for TLS, or unset REDIS_TLS_CA_FILE`,
      },
    ]);
  const ca = readSettingFile('REDIS_TLS_CA_FILE', path);
  const problem = pemCertificatesProblem(ca);
  if (problem !== undefined)
    throw new SettingsError([{ setting: 'REDIS_TLS_CA_FILE', issue: `${path} ${problem}` }]);
  return [ca];
}

/** TLS (rediss://, trusting `ca` when given) and the ACL user or AUTH password of a Redis URL. */
export function redisConnectionSecurity(
  url: string | undefined,
  ca: readonly string[] | undefined,
): RedisConnectionSecurity {
  if (url === undefined) return {};
  const parsed = new URL(url);
  const security: RedisConnectionSecurity = {};
  if (parsed.protocol === 'rediss:') security.tls = ca ? { ca: [...ca] } : {};
  if (parsed.username !== '') security.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') security.password = decodeURIComponent(parsed.password);
  return security;
}
