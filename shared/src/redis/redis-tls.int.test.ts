import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { SettingsError } from '../settings/load-settings.js';
import { createTestCa, issueTestCertificate } from '../testing/test-certificates.js';
import { cacheRedisClientOptions } from './cache-redis.js';
import {
  createRedisClient,
  duplicateForSubscribe,
  type RedisClient,
  redisClientOptionsFromSettings,
  whenReady,
} from './client.js';
import { type PrivateRedisServer, startPrivateRedisServer } from './private-redis-server.js';

/**
 * Managed Redis (ElastiCache, Memorystore, Upstash) is reached over TLS with an ACL user, often behind a
 * private CA: every client the services make (createRedisClient from the settings) must use the URL's
 * TLS and credentials, on a single server and on a Redis Cluster, and never show the password.
 */

const PASSWORD = 'redis-acl-s3cret';
const ACL_USER = ['--user', 'default', 'off', '--user', 'gateway', 'on', `>${PASSWORD}`, '~*', '&*', '+@all'];

const dir = mkdtempSync(join(tmpdir(), 've-redis-tls-'));
const caFile = join(dir, 'ca.pem');
let single: PrivateRedisServer;
let cluster: PrivateRedisServer;
const clients: RedisClient[] = [];

const withCredentials = (url: string) => url.replace('rediss://', `rediss://gateway:${PASSWORD}@`);

const settings = (url: string, clusterNodes: string[] = []) => ({
  REDIS_URL: url,
  REDIS_CLUSTER_NODES: clusterNodes,
  REDIS_COMMAND_TIMEOUT_MS: 2_000,
  REDIS_CONNECT_TIMEOUT_MS: 2_000,
  REDIS_TLS_CA_FILE: caFile,
});

function logged(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { logger: createLogger({ service: 'test', level: 'info', stream }), text: () => text };
}

beforeAll(async () => {
  const ca = await createTestCa('Redis Test CA');
  const leaf = await issueTestCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(caFile, ca.certificatePem);
  writeFileSync(join(dir, 'server.pem'), leaf.certificatePem);
  writeFileSync(join(dir, 'server.key'), leaf.privateKeyPem);
  const tls = { certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key'), caFile };
  single = await startPrivateRedisServer(ACL_USER, { tls });
  // As managed clusters in TLS mode: nodes announce a host name, their certificate names no address.
  const named = await issueTestCertificate(ca, { dnsNames: ['localhost'] });
  writeFileSync(join(dir, 'named.pem'), named.certificatePem);
  writeFileSync(join(dir, 'named.key'), named.privateKeyPem);
  cluster = await startPrivateRedisServer(
    [
      ...ACL_USER,
      '--cluster-enabled',
      'yes',
      '--tls-cluster',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--cluster-announce-hostname',
      'localhost',
      '--cluster-preferred-endpoint-type',
      'hostname',
    ],
    { tls: { certFile: join(dir, 'named.pem'), keyFile: join(dir, 'named.key'), caFile } },
  );
  // A one-master cluster holding every slot.
  const admin = new Redis({
    host: 'localhost',
    port: cluster.port,
    username: 'gateway',
    password: PASSWORD,
    tls: { ca: [ca.certificatePem] },
  });
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  for (let i = 0; i < 100 && !String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++)
    await new Promise((resolve) => setTimeout(resolve, 50));
  admin.disconnect();
}, 30_000);

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all([single?.stop(), cluster?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function connect(options: ReturnType<typeof redisClientOptionsFromSettings>, logger = logged().logger) {
  const client = createRedisClient({ ...options, name: 'tls-test', logger });
  clients.push(client);
  return client;
}

describe('Redis over TLS with an ACL user', () => {
  it('a single server: rediss:// with user:password, trusting REDIS_TLS_CA_FILE', async () => {
    const client = connect(redisClientOptionsFromSettings(settings(withCredentials(single.url))));
    await whenReady(client);
    expect(await client.call('ACL', 'WHOAMI')).toBe('gateway');
    await client.set('{tls}:k', 'v');
    expect(await client.get('{tls}:k')).toBe('v');
  });

  it('a Redis Cluster: REDIS_URL’s rediss:// and user:password apply to every node of REDIS_CLUSTER_NODES', async () => {
    const client = connect(
      redisClientOptionsFromSettings(
        settings(withCredentials('rediss://redis.invalid'), [`localhost:${cluster.port}`]),
      ),
    );
    await whenReady(client);
    expect(await client.call('ACL', 'WHOAMI')).toBe('gateway');
    await client.set('{tls}:k', 'v');
    expect(await client.get('{tls}:k')).toBe('v');
  });

  it('the cache’s own Redis Cluster takes GATEWAY_CACHE_REDIS_URL’s TLS and credentials', async () => {
    const options = cacheRedisClientOptions({
      ...settings(withCredentials('rediss://redis.invalid')),
      GATEWAY_CACHE_REDIS_URL: withCredentials('rediss://cache.invalid'),
      GATEWAY_CACHE_REDIS_CLUSTER_NODES: [`localhost:${cluster.port}`],
    });
    if (options === undefined) throw new Error('no cache Redis options');
    const client = connect(options);
    await whenReady(client);
    expect(await client.call('ACL', 'WHOAMI')).toBe('gateway');
  });

  it.each([
    ['a single server', () => settings(withCredentials(single.url))],
    [
      'a Redis Cluster',
      () => settings(withCredentials('rediss://redis.invalid'), [`localhost:${cluster.port}`]),
    ],
  ] as const)(
    '%s: a subscriber (cache purges) made from the client hears what the client publishes',
    async (_, given) => {
      const client = connect(redisClientOptionsFromSettings(given()));
      const subscriber = duplicateForSubscribe(client);
      clients.push(subscriber);
      const heard = new Promise<string>((resolve) =>
        subscriber.on('message', (_channel, message) => resolve(message)),
      );
      await subscriber.subscribe('tls-test');
      await whenReady(client);
      await client.publish('tls-test', 'purged');
      expect(await heard).toBe('purged');
    },
  );

  it('a wrong password is logged without the password, and the server is not trusted without its CA', async () => {
    const { logger, text } = logged();
    const wrong = single.url.replace('rediss://', 'rediss://gateway:not-the-password@');
    const client = connect(redisClientOptionsFromSettings(settings(wrong)), logger);
    await expect(whenReady(client, 1_500)).rejects.toThrow(/not ready/);
    expect(text()).toContain('redis unavailable');
    expect(text()).not.toContain('not-the-password');

    const untrusting = connect(
      redisClientOptionsFromSettings({
        ...settings(withCredentials(single.url)),
        REDIS_TLS_CA_FILE: undefined,
      }),
    );
    await expect(whenReady(untrusting, 1_500)).rejects.toThrow(/not ready/);
  });

  it('a CA file that cannot be read, or with a redis:// URL, stops the service naming REDIS_TLS_CA_FILE', () => {
    const missing = { ...settings(withCredentials(single.url)), REDIS_TLS_CA_FILE: join(dir, 'none.pem') };
    expect(() => redisClientOptionsFromSettings(missing)).toThrow(SettingsError);
    expect(() => redisClientOptionsFromSettings(missing)).toThrow(/REDIS_TLS_CA_FILE/);
    const notPem = { ...settings(withCredentials(single.url)), REDIS_TLS_CA_FILE: join(dir, 'server.key') };
    expect(() => redisClientOptionsFromSettings(notPem)).toThrow(/REDIS_TLS_CA_FILE/);
    const plain = settings(`redis://127.0.0.1:${single.port}`);
    expect(() => redisClientOptionsFromSettings(plain)).toThrow(/REDIS_TLS_CA_FILE.*rediss:\/\//);
    expect(() => redisClientOptionsFromSettings(missing)).not.toThrow(new RegExp(PASSWORD));
  });
});
