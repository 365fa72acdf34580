import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tenantDnsLookups } from '../upstream/dns-lookups.js';
import { RemoteJwksRegistry } from './jwks.js';

/**
 * Regression test: a tenant's jwks_url was fetched through a connector that looked its name up at once,
 * outside the turns origin lookups take (TenantDnsLookups), so tenants whose key-set names never resolve
 * could hold every libuv thread the other tenants' lookups (and the process's file writes) wait for.
 */
describe('a tenant key set’s name is looked up in a turn of its own', () => {
  let server: Server;
  const lookedUp: string[] = [];

  beforeAll(async () => {
    server = createServer((_req, res) => res.end(JSON.stringify({ keys: [] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const forTenant = tenantDnsLookups.forTenant.bind(tenantDnsLookups);
    vi.spyOn(tenantDnsLookups, 'forTenant').mockImplementation((turn) => {
      const resolve = forTenant(turn);
      return (hostname, options, callback) => {
        lookedUp.push(`${turn} | ${hostname}`);
        resolve(hostname, { ...options, family: 4 }, callback);
      };
    });
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('fetches a jwks_url on a name through the lookups’ turns', async () => {
    const jwks = new RemoteJwksRegistry({
      addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
    });
    const url = `http://localhost:${(server.address() as AddressInfo).port}/jwks`;
    const getKey = jwks.acquire(url).getKey;
    await expect(getKey({ alg: 'RS256', kid: 'k1' }, { payload: '', signature: '' })).rejects.toThrow();
    expect(lookedUp).toContain('jwks localhost | localhost');
  });
});
