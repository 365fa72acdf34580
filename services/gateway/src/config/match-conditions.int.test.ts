import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Matching beyond path and method, through the real pipeline: of routes with the same path, the one
 * whose header / query / host conditions hold wins over the path-only one; priority still comes first.
 */
describe('route match conditions', () => {
  let gateway: TestGateway;
  let v1: TestOrigin;
  let v2: TestOrigin;

  beforeAll(async () => {
    v1 = await startTestOrigin('v1');
    v2 = await startTestOrigin('v2');
    gateway = await startTestGateway();
    const v1Id = randomUUID();
    const v2Id = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'match',
        customDomains: ['api.match.example'],
        origins: [
          { id: v1Id, targets: [v1.url] },
          { id: v2Id, targets: [v2.url] },
        ],
        routes: [
          { origin_id: v1Id, path_pattern: '/items/*' },
          {
            origin_id: v2Id,
            path_pattern: '/items/*',
            match: { headers: [{ name: 'X-Api-Version', exact: '2' }] },
          },
          { origin_id: v2Id, path_pattern: '/items/*', match: { query: [{ name: 'beta', present: true }] } },
          { origin_id: v2Id, path_pattern: '/items/*', match: { hosts: ['api.match.example'] } },
          {
            origin_id: v2Id,
            path_pattern: '/agents/*',
            match: { headers: [{ name: 'user-agent', prefix: 'curl/' }] },
          },
          {
            origin_id: v1Id,
            path_pattern: '/agents/*',
            priority: 10,
            match: { query: [{ name: 'pin', exact: 'v1' }] },
          },
          { origin_id: v1Id, path_pattern: '/agents/*' },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await v1?.close();
    await v2?.close();
  });

  const originOf = async (host: string, path: string, headers: Record<string, string> = {}) =>
    (await send(gateway, host, path, { headers })).json()['origin'];

  it('sends a request with the header to the header-matched route, others to the path-only route', async () => {
    expect(await originOf('match.localhost', '/items/1', { 'x-api-version': '2' })).toBe('v2');
    expect(await originOf('match.localhost', '/items/1', { 'x-api-version': '3' })).toBe('v1');
    expect(await originOf('match.localhost', '/items/1')).toBe('v1');
  });

  it('matches query conditions and host conditions', async () => {
    expect(await originOf('match.localhost', '/items/1?beta')).toBe('v2');
    expect(await originOf('match.localhost', '/items/1?beta=yes&x=1')).toBe('v2');
    expect(await originOf('api.match.example', '/items/1')).toBe('v2');
    expect(await originOf('API.Match.Example:443', '/items/1')).toBe('v2');
  });

  it('puts priority before conditions, and matches header prefixes', async () => {
    expect(await originOf('match.localhost', '/agents/1', { 'user-agent': 'curl/8.0' })).toBe('v2');
    expect(await originOf('match.localhost', '/agents/1', { 'user-agent': 'Mozilla/5.0' })).toBe('v1');
    expect(await originOf('match.localhost', '/agents/1?pin=v1', { 'user-agent': 'curl/8.0' })).toBe('v1');
  });
});
