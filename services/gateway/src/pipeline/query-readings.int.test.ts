import { randomUUID } from 'node:crypto';
import { parse } from 'node:querystring';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * A query condition reads every value of a repeated parameter, while an origin reads one of them: the
 * first (Go, Flask, Envoy-style readers) or the last (PHP, Rails). When those readings reach a
 * differently protected route than the request's own match, the request is refused.
 */
let gateway: TestGateway;
let open: TestOrigin;
let keyed: TestOrigin;

beforeAll(async () => {
  open = await startTestOrigin('open');
  keyed = await startTestOrigin('keyed');
  gateway = await startTestGateway();
  const openId = randomUUID();
  const keyedId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'querydup',
      origins: [
        { id: openId, targets: [open.url] },
        { id: keyedId, targets: [keyed.url] },
      ],
      routes: [
        // The PDF export is public; every other format needs a key.
        {
          origin_id: openId,
          path_pattern: '/reports/*',
          match: { query: [{ name: 'format', exact: 'pdf' }] },
        },
        { origin_id: keyedId, path_pattern: '/reports/*', auth_mode: 'apikey_required' },
        // Admin requests need a key; everything else under /panel is public.
        {
          origin_id: keyedId,
          path_pattern: '/panel/*',
          auth_mode: 'apikey_required',
          match: { query: [{ name: 'admin', exact: 'true' }] },
        },
        { origin_id: openId, path_pattern: '/panel/*' },
        // Two public routes told apart by a parameter: equally protected.
        { origin_id: keyedId, path_pattern: '/docs/*', match: { query: [{ name: 'lang', exact: 'en' }] } },
        { origin_id: openId, path_pattern: '/docs/*' },
        // Exports that pick fields need a key; the default export is public.
        {
          origin_id: keyedId,
          path_pattern: '/exports/*',
          auth_mode: 'apikey_required',
          match: { query: [{ name: 'fields[]', present: true }] },
        },
        { origin_id: openId, path_pattern: '/exports/*' },
        // Every caller is on the free tier, whatever it sends.
        { origin_id: openId, path_pattern: '/plans/*', query: { set: { tier: 'free' } } },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await open?.close();
  await keyed?.close();
});

const host = 'querydup.localhost';

describe('a query parameter sent more than once with values that differ', () => {
  it('is refused 403 ambiguous_query when the last value reads as a keyed route’s request', async () => {
    const seen = open.seen.length;
    for (const path of [
      '/reports/q3?format=pdf&format=csv',
      '/reports/q3?format=csv&format=pdf',
      '/reports/q3?format=pdf&Format[]=csv',
    ]) {
      const answer = await send(gateway, host, path);
      expect(answer.status, path).toBe(403);
      expect(answer.json()['error'], path).toMatchObject({ code: 'ambiguous_query' });
      expect((answer.json()['error'] as { message: string }).message, path).toContain('"format"');
    }
    expect(open.seen.length).toBe(seen);
  });

  it('is refused 403 ambiguous_query when one reading leaves a keyed route for a public one', async () => {
    const seen = open.seen.length + keyed.seen.length;
    for (const path of ['/panel/users?admin=true&admin=false', '/panel/users?admin=false&admin=true']) {
      const answer = await send(gateway, host, path);
      expect(answer.status, path).toBe(403);
      expect(answer.json()['error'], path).toMatchObject({ code: 'ambiguous_query' });
    }
    expect(open.seen.length + keyed.seen.length).toBe(seen);
  });

  it('is refused 403 ambiguous_query on a WebSocket upgrade too', async () => {
    const seen = open.seen.length;
    const answer = await sendUpgrade(gateway, host, '/reports/live?format=pdf&format=csv');
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)['error']).toMatchObject({ code: 'ambiguous_query' });
    expect(open.seen.length).toBe(seen);
  });
});

describe('a query parameter sent once, in a pair only a `;` separates', () => {
  it('is refused 403 ambiguous_query: an origin splitting pairs at `&` alone reads no such parameter', async () => {
    const seen = open.seen.length + keyed.seen.length;
    // PHP, Rails and node read `x` = `1;format=pdf` and no `format`: the keyed route's answer, with no key.
    for (const path of ['/reports/q3?x=1;format=pdf', '/reports/q3?page=2&x=1;format=pdf']) {
      const answer = await send(gateway, host, path);
      expect(answer.status, path).toBe(403);
      expect(answer.json()['error'], path).toMatchObject({ code: 'ambiguous_query' });
      expect((answer.json()['error'] as { message: string }).message, path).toContain('"format"');
    }
    expect(open.seen.length + keyed.seen.length).toBe(seen);
  });

  it('gets today’s route when every origin reads the parameter alike', async () => {
    const answer = await send(gateway, host, '/reports/q3?x=1;y=2&format=pdf');
    expect(answer.status).toBe(200);
    expect(open.seen.at(-1)?.url).toBe('/reports/q3?x=1;y=2&format=pdf');
  });
});

describe('a query beginning with a second `?`', () => {
  it('holds no parameter of the name after it: `??format=pdf` gets the keyed route, as origins read `?format`', async () => {
    const seen = open.seen.length;
    const answer = await send(gateway, host, '/reports/q3??format=pdf');
    expect(answer.status).toBe(401);
    expect(open.seen.length).toBe(seen);
  });
});

describe('a query whose readings all reach the same protection', () => {
  it('gets today’s route: repeated values that agree, in any spelling', async () => {
    for (const path of ['/reports/q3?format=pdf&format=pdf', '/reports/q3?format=pdf&Format[]=pdf'])
      expect((await send(gateway, host, path)).status, path).toBe(200);
    expect((await send(gateway, host, '/panel/users?admin=true&admin=true')).status).toBe(401);
  });

  it('gets today’s route: a repeated parameter no condition reads', async () => {
    const answer = await send(gateway, host, '/reports/q3?format=pdf&page=1&page=2');
    expect(answer.status).toBe(200);
    expect(open.seen.at(-1)?.url).toBe('/reports/q3?format=pdf&page=1&page=2');
  });

  it('gets today’s route: readings that reach an equally protected route', async () => {
    const answer = await send(gateway, host, '/docs/intro?lang=en&lang=de');
    expect(answer.status).toBe(200);
    expect(keyed.seen.at(-1)?.url).toBe('/docs/intro?lang=en&lang=de');
  });
});

describe('a query of more parameters than origins read', () => {
  // PHP (max_input_vars), node's querystring (Express), qs and Tomcat read the first 1,000 pairs of a
  // query and drop the rest, empty ones counted.
  const dropped = '&'.repeat(1000);

  it('is refused 400 invalid_query: a condition’s parameter past them is one the origin never reads', async () => {
    const seen = open.seen.length + keyed.seen.length;
    for (const path of [`/reports/q3?${dropped}format=pdf`, `/reports/q3?${'x=1;'.repeat(1000)}format=pdf`]) {
      const answer = await send(gateway, host, path);
      expect(answer.status, path.slice(-20)).toBe(400);
      expect(answer.json()['error'], path.slice(-20)).toMatchObject({ code: 'invalid_query' });
      expect((answer.json()['error'] as { message: string }).message).toContain('parameters');
    }
    expect(open.seen.length + keyed.seen.length).toBe(seen);
  });

  it('is refused 400 invalid_query: the parameters the route’s transform writes stay among those read', async () => {
    const seen = open.seen.length;
    // Its `tier=free` would go after the client's 1,000 pairs.
    const answer = await send(gateway, host, `/plans/x?${Array(1000).fill('page=1').join('&')}`);
    expect(answer.status).toBe(400);
    expect(answer.json()['error']).toMatchObject({ code: 'invalid_query' });
    expect(open.seen.length).toBe(seen);
  });

  it('is refused 400 invalid_query on a WebSocket upgrade too', async () => {
    const seen = open.seen.length;
    const answer = await sendUpgrade(gateway, host, `/reports/live?${dropped}format=pdf`);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)['error']).toMatchObject({ code: 'invalid_query' });
    expect(open.seen.length).toBe(seen);
  });

  it('reaches the origin whole below the limit, the route’s own parameters read there', async () => {
    for (const query of [`${'page=1&'.repeat(939)}tier=gold`, Array(940).fill('page=1').join('&')]) {
      const answer = await send(gateway, host, `/plans/x?${query}`);
      expect(answer.status).toBe(200);
      const url = open.seen.at(-1)!.url;
      expect(parse(url.slice(url.indexOf('?') + 1))['tier']).toBe('free');
    }
  });
});

// PHP, Rails and Express (qs) fill the array `fields` from `fields[]=…`, `fields[0]=…` and `fields=…`
// alike: each spelling meets the keyed route's condition on `fields[]`.
describe('a query condition on a name given with []', () => {
  it('is met by every spelling origins read as that name: the keyed route asks for its key', async () => {
    const seen = open.seen.length;
    for (const path of [
      '/exports/all?fields[]=ssn',
      '/exports/all?fields[0]=ssn',
      '/exports/all?fields=ssn',
    ]) {
      expect((await send(gateway, host, path)).status, path).toBe(401);
    }
    expect(open.seen.length).toBe(seen);
    expect((await send(gateway, host, '/exports/all?page=2')).status).toBe(200);
  });
});
