import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedisCluster, masterOf, proxiedClusterNodes } from '../testing/cluster.js';
import type { TcpProxy } from '../testing/tcp-proxy.js';
import { createRedisClient, type RedisClient, whenReady } from './client.js';

/**
 * A Cluster client whose connection to a master stops answering (a partition, a NAT that forgot the
 * flow) replaces it after its socket timeout, as the single server's client does, and a command its
 * caller was told had failed is not sent again on the new one: it would run after the caller decided
 * without it (a limit charged for a request answered 503, a quota counted twice).
 */
const cluster = await createTestRedisCluster('unanswered-commands');
const clients: RedisClient[] = [];
const proxies: TcpProxy[] = [];
const slowListeners: ChildProcess[] = [];
const sockets: net.Socket[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  for (const socket of sockets) socket.destroy();
  for (const listener of slowListeners) listener.kill();
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await cluster.cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An address in front of `node` whose new connections do not complete until `open()`: its listening
 * socket's queue is full, so the kernel drops their SYNs and the client sends them again a second later.
 * Python's, since a Node listener accepts every connection by itself.
 */
async function slowToOpen(node: string): Promise<{ host: string; port: number; open(): void }> {
  const upstream = Number(node.split(':')[1]);
  const listener = spawn('python3', [
    '-c',
    `import socket,sys,threading
def pipe(a,b):
  try:
    while True:
      d=a.recv(65536)
      if not d: break
      b.sendall(d)
  except OSError: pass
  try: b.shutdown(socket.SHUT_WR)
  except OSError: pass
s=socket.socket()
s.bind(('127.0.0.1',0))
s.listen(0)
print(s.getsockname()[1],flush=True)
sys.stdin.readline()
while True:
  c,_=s.accept()
  u=socket.create_connection(('127.0.0.1',${upstream}))
  threading.Thread(target=pipe,args=(c,u),daemon=True).start()
  threading.Thread(target=pipe,args=(u,c),daemon=True).start()`,
  ]);
  slowListeners.push(listener);
  const port = await new Promise<number>((resolve) =>
    listener.stdout!.once('data', (data: Buffer) => resolve(Number(String(data).trim()))),
  );
  for (let i = 0; i < 3; i++) sockets.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
  await sleep(100);
  return { host: '127.0.0.1', port, open: () => listener.stdin!.write('\n') };
}

describe('a Cluster command whose connection stopped answering', () => {
  it('is not sent again once its connection is replaced', async () => {
    const { natMap, seeds, proxyOf: byNode } = await proxiedClusterNodes(proxies);
    const client = createRedisClient({
      clusterNodes: seeds,
      natMap,
      commandTimeoutMs: 50,
      connectTimeoutMs: 300,
      name: 'unanswered-commands',
    });
    client.on('error', () => undefined);
    clients.push(client);
    await whenReady(client, 20_000);
    const key = cluster.key('{tenant-unanswered}:count');
    expect(await client.set(key, '0')).toBe('OK');
    // The INCR's bytes are lost on the way: Redis never runs it.
    byNode.get(await masterOf(cluster.client, key))!.blackholeOpenConnections();
    await expect(client.incr(key)).rejects.toThrow('Command timed out');
    // Its connection is replaced after 300 ms of silence; the client answers again through a new one.
    let answered: string | null = null;
    for (let i = 0; i < 100 && answered === null; i++) {
      answered = await client.get(key).catch(() => null);
      if (answered === null) await sleep(50);
    }
    expect(answered).toBe('0');
    // Past ioredis' failover delay (100 ms) after the old connection closed, when it sends commands again.
    await sleep(500);
    expect(await cluster.client.get(key)).toBe('0');
  });

  it('is not sent, auto-pipelined, once the new connection it waited for opens', async () => {
    const { natMap, seeds, proxyOf: byNode } = await proxiedClusterNodes(proxies);
    const client = createRedisClient({
      clusterNodes: seeds,
      natMap,
      commandTimeoutMs: 50,
      connectTimeoutMs: 3_000,
      autoPipelining: true,
      name: 'unanswered-pipelined',
    }) as Cluster;
    client.on('error', () => undefined);
    clients.push(client);
    await whenReady(client, 20_000);
    const key = cluster.key('{tenant-unanswered-pipelined}:count');
    expect(await client.set(key, '0')).toBe('OK');
    // The master's connection closes and the client learns the slot table again: its new connection to
    // the master is slow to open (a SYN lost, an overloaded host), and the INCR waits for it.
    const master = await masterOf(cluster.client, key);
    const slow = await slowToOpen(master);
    natMap[master] = slow;
    byNode.get(master)!.cutClientSide();
    await new Promise<void>((resolve, reject) =>
      client.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
    );
    await expect(client.incr(key)).rejects.toThrow('Command timed out');
    // The connection opens after its caller was answered.
    slow.open();
    let answered: string | null = null;
    for (let i = 0; i < 100 && answered === null; i++) {
      answered = await client.get(key).catch(() => null);
      if (answered === null) await sleep(50);
    }
    expect(answered).toBe('0');
    expect(await cluster.client.get(key)).toBe('0');
  });

  it('is not sent, in a transaction, once the new connection it waited for opens', async () => {
    const { natMap, seeds, proxyOf: byNode } = await proxiedClusterNodes(proxies);
    const client = createRedisClient({
      clusterNodes: seeds,
      natMap,
      commandTimeoutMs: 50,
      connectTimeoutMs: 3_000,
      name: 'unanswered-transaction',
    }) as Cluster;
    client.on('error', () => undefined);
    clients.push(client);
    await whenReady(client, 20_000);
    const key = cluster.key('{tenant-unanswered-transaction}:count');
    // Answered as ioredis answers a transaction: each command's reply.
    expect(await client.multi().set(key, '0').incr(key).exec()).toEqual([
      [null, 'OK'],
      [null, 1],
    ]);
    expect(await client.set(key, '0')).toBe('OK');
    const master = await masterOf(cluster.client, key);
    const slow = await slowToOpen(master);
    natMap[master] = slow;
    byNode.get(master)!.cutClientSide();
    await new Promise<void>((resolve, reject) =>
      client.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
    );
    await expect(client.multi().incr(key).exec()).rejects.toThrow('Command timed out');
    // The connection opens after its caller was answered.
    slow.open();
    let answered: string | null = null;
    for (let i = 0; i < 100 && answered === null; i++) {
      answered = await client.get(key).catch(() => null);
      if (answered === null) await sleep(50);
    }
    expect(answered).toBe('0');
    expect(await cluster.client.get(key)).toBe('0');
  });
});
