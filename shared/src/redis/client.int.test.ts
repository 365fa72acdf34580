import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, parseClusterNode, type RedisClient, whenReady } from './client.js';
import { type PrivateRedisServer, startPrivateRedisServer } from './private-redis-server.js';

describe('createRedisClient (single server)', () => {
  let server: PrivateRedisServer;
  let client: RedisClient;
  beforeAll(async () => {
    server = await startPrivateRedisServer();
    client = createRedisClient({ url: server.url, commandTimeoutMs: 50, name: 'client-test' });
    await whenReady(client);
  });
  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  it('fails commands at once while the server is down and reconnects by itself', async () => {
    expect(await client.set('k', 'v')).toBe('OK');
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const failures = await Promise.allSettled(Array.from({ length: 20 }, () => client.get('k')));
    expect(failures.every((result) => result.status === 'rejected')).toBe(true);
    await server.start();
    await whenReady(client, 10_000);
    expect(await client.ping()).toBe('PONG');
  });
});

describe('parseClusterNode', () => {
  it('reads host:port and rejects malformed entries', () => {
    expect(parseClusterNode('10.0.0.1:7001')).toEqual({ host: '10.0.0.1', port: 7001 });
    expect(parseClusterNode('redis-a')).toEqual({ host: 'redis-a', port: 6379 });
    expect(() => parseClusterNode('redis-a:notaport')).toThrow(/host:port/);
  });

  it('reads an IPv6 seed as the address the client connects to, with or without a port', () => {
    expect(parseClusterNode('[fd00::7]:7001')).toEqual({ host: 'fd00::7', port: 7001 });
    expect(parseClusterNode('[::1]')).toEqual({ host: '::1', port: 6379 });
    expect(parseClusterNode('fd00::7')).toEqual({ host: 'fd00::7', port: 6379 });
  });
});
