import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RemoteJwksRegistry } from './jwks.js';

const ANY_TOKEN = { payload: '', signature: '' };

/** What the key-set host saw, and what the replica logged. */
interface Observed {
  requests: string[];
  warnings: Array<{ message: string; fields: Record<string, unknown> | undefined }>;
}

function recordingLogger(observed: Observed): StructuredLogger {
  return {
    info() {},
    error() {},
    warn(message, fields) {
      observed.warnings.push({ message, fields });
    },
  };
}

/**
 * Regression tests: a failed key-set fetch was counted but its reason went nowhere, so an operator saw
 * tokens refused with no word of why (a 404, a timeout, a set too large); and every query string of a
 * jwks_url was a key set with a cooldown of its own, so a tenant naming the same URL with many query
 * strings had the replica fetch from that host once per variant instead of once per cooldown.
 */
describe('remote key-set fetches: failures are logged, query variants share one cooldown', () => {
  let server: Server;
  let base: string;
  const observed: Observed = { requests: [], warnings: [] };
  let jwks: RemoteJwksRegistry;

  beforeAll(async () => {
    server = createServer((req, res) => {
      observed.requests.push(req.url ?? '/');
      if (req.url?.startsWith('/missing')) res.writeHead(404).end('not here');
      else res.end(JSON.stringify({ keys: [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    observed.requests.length = 0;
    observed.warnings.length = 0;
    jwks = new RemoteJwksRegistry({
      addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
      logger: recordingLogger(observed),
    });
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it('logs why a fetch failed, naming the key set without its credentials', async () => {
    const getKey = jwks.acquire(`${base}/missing/jwks?client_secret=s3cr3t`).getKey;
    await expect(getKey({ alg: 'RS256', kid: 'k1' }, ANY_TOKEN)).rejects.toThrow();
    expect(observed.warnings).toEqual([
      {
        message: 'JWKS fetch failed',
        fields: {
          source: 'oidc',
          jwks_url: `${base}/missing/jwks?client_secret=<redacted>`,
          reason: 'JWKS answered 404',
        },
      },
    ]);
    expect(JSON.stringify(observed.warnings)).not.toContain('s3cr3t');
  });

  it('keeps the credentials of a jwks_url an earlier release stored out of the reason too', async () => {
    const getKey = jwks.acquire(`${base}/jwks?variant=credentials`.replace('//', '//user:pa55w0rd@')).getKey;
    await expect(getKey({ alg: 'RS256', kid: 'k1' }, ANY_TOKEN)).rejects.toThrow();
    expect(observed.warnings).toHaveLength(1);
    expect(observed.warnings[0]!.fields?.['reason']).toMatch(/credentials/);
    expect(JSON.stringify(observed.warnings)).not.toContain('pa55w0rd');
  });

  it('logs a fetch that could not connect, with the connection error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const getKey = jwks.acquire(`http://127.0.0.1:${port}/jwks`).getKey;
    await expect(getKey({ alg: 'RS256', kid: 'k1' }, ANY_TOKEN)).rejects.toThrow();
    expect(observed.warnings).toHaveLength(1);
    expect(observed.warnings[0]!.fields?.['reason']).toMatch(/ECONNREFUSED/);
  });

  it('fetches a URL named with many query strings once per cooldown', async () => {
    const keySets = Array.from({ length: 5 }, (_, i) => jwks.acquire(`${base}/jwks?variant=${i}`).getKey);
    for (const getKey of keySets) {
      await expect(getKey({ alg: 'RS256', kid: 'k1' }, ANY_TOKEN)).rejects.toThrow();
    }
    expect(observed.requests).toEqual(['/jwks?variant=0']);
  });

  it('keeps a cooldown of its own for each path of a host', async () => {
    for (const path of ['a', 'b']) {
      const getKey = jwks.acquire(`${base}/${path}/jwks?variant=1`).getKey;
      await expect(getKey({ alg: 'RS256', kid: 'k1' }, ANY_TOKEN)).rejects.toThrow();
    }
    expect(observed.requests).toEqual(['/a/jwks?variant=1', '/b/jwks?variant=1']);
  });
});
