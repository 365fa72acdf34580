import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { INTERNAL_LISTENER_HEADER } from '@vantageedge/shared/http/internal-listener';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { exportJWK, generateKeyPair } from 'jose';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteJwksRegistry } from './jwks.js';

const MiB = 1024 * 1024;

/** What the server did with one request. */
interface Answered {
  path: string;
  /** The whole body was written (false: the gateway closed the connection first). */
  finished: boolean;
  closed: Promise<void>;
}

/**
 * A tenant's jwks_url answered by a server the tenant controls: a redirect elsewhere, a body fed a
 * byte at a time, a small gzip body that inflates far past the 1 MiB bound. Each is a failed fetch
 * that ends at its bound (the redirect not followed, the read at the fetch timeout, the inflated body
 * at 1 MiB), so the replica keeps no more than that and the next fetch waits for the cooldown. A key set
 * a platform listener serves (marked as internal) is refused as origins' answers are.
 */
describe('tenant key sets served by hostile servers', () => {
  let server: Server;
  let base: string;
  const answered: Answered[] = [];
  let keySet = '';
  /** 64 MiB of padding in a key set, gzipped to about 64 KB. */
  let bomb: Buffer;
  const registry = new Registry();
  let jwks: RemoteJwksRegistry;

  beforeAll(async () => {
    const { publicKey } = await generateKeyPair('RS256');
    keySet = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] });
    bomb = gzipSync(`{"keys":[],"pad":"${'0'.repeat(64 * MiB)}"}`);
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      const entry: Answered = {
        path,
        finished: false,
        closed: new Promise((resolve) => res.once('close', () => resolve())),
      };
      res.once('finish', () => {
        entry.finished = true;
      });
      answered.push(entry);
      if (path === '/redirect') res.writeHead(302, { location: '/keys' }).end();
      else if (path === '/keys') res.writeHead(200, { 'content-type': 'application/json' }).end(keySet);
      else if (path === '/internal-keys') {
        // A platform listener (the control plane, a replica's admin port) serving a valid key set.
        res.writeHead(200, {
          'content-type': 'application/json',
          [INTERNAL_LISTENER_HEADER]: 'control-plane',
        });
        res.end(keySet);
      } else if (path === '/gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(keySet));
      } else if (path === '/bomb') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(bomb);
      } else if (path === '/drip') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(keySet.slice(0, 20));
        const drip = setInterval(() => res.write(' '), 100);
        res.once('close', () => clearInterval(drip));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    jwks = new RemoteJwksRegistry({
      registry,
      addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
      // The drip's fetch ends at it; every other fetch has time enough, on a busy machine, to finish first.
      policy: { timeoutMs: 3_000 },
    });
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  async function fetches(outcome: 'ok' | 'failed'): Promise<number> {
    const metric = await registry.getSingleMetric('vantageedge_gateway_jwks_fetches_total')?.get();
    return metric?.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;
  }

  /** Whether the set at `path` yields key k1, and how the fetch went. */
  async function lookUp(path: string) {
    const [ok, failed] = [await fetches('ok'), await fetches('failed')];
    const getKey = jwks.acquire(`${base}${path}`).getKey;
    const found = await Promise.resolve(getKey({ alg: 'RS256', kid: 'k1' }, { payload: '', signature: '' }))
      .then(() => true)
      .catch(() => false);
    return { found, ok: (await fetches('ok')) - ok, failed: (await fetches('failed')) - failed };
  }

  const answer = (path: string) => answered.find((entry) => entry.path === path);

  it('reads a gzip-encoded key set like any other', async () => {
    expect(await lookUp('/gzip')).toEqual({ found: true, ok: 1, failed: 0 });
  });

  it('does not follow a redirect, not even to a valid key set on the same server', async () => {
    expect(await lookUp('/redirect')).toEqual({ found: false, ok: 0, failed: 1 });
    expect(answer('/keys')).toBeUndefined();
  });

  it('gives up on a body fed a byte at a time at the fetch timeout, closing the connection', async () => {
    expect(await lookUp('/drip')).toEqual({ found: false, ok: 0, failed: 1 });
    const drip = answer('/drip');
    await drip?.closed;
    expect(drip?.finished).toBe(false);
  });

  it("takes no key set from one of the platform's internal listeners, as origins never relay them", async () => {
    expect(await lookUp('/internal-keys')).toEqual({ found: false, ok: 0, failed: 1 });
  });

  it('stops inflating a gzip body at 1 MiB', async () => {
    expect(await lookUp('/bomb')).toEqual({ found: false, ok: 0, failed: 1 });
    // The bound is on what the body inflates to: the 64 KB on the wire were all sent.
    expect(bomb.length).toBeLessThan(MiB);
  });
});
