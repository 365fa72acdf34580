import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { MAX_ANSWER_HEADER_LINES, MAX_INTERIM_ANSWERS } from '../upstream/unasked-continue.js';

/**
 * What a hostile origin's answer may not do through the gateway. Regression tests:
 * - `Clear-Site-Data: "cookies"` from one tenant's origin reached browsers on a platform subdomain,
 *   where it clears the cookies of the whole base domain: every tenant's visitors signed out;
 * - an origin sending `103 Early Hints` every 300 ms held a request past the origin's response timeout
 *   (undici starts its head timer again on each 1xx), and its final answer was served seconds later; one
 *   that also stopped reading the request's body held it past the origin's and the route's timeouts, up
 *   to the client's request timeout (the final head's deadline waited for the body to be sent whole);
 * - `Alt-Svc` from one tenant's origin (or route policy) was relayed: browsers keep sending the host's
 *   requests to the endpoint it names for up to its `ma` (persist=1: across networks), so once the
 *   subdomain or custom domain went to another tenant, that tenant's visitors still reached the first
 *   tenant's endpoint (holding a certificate for the host it got while it served it);
 * - `NEL` (Network Error Logging) likewise: browsers keep the policy for the host up to its max_age, and
 *   once the host went to another tenant, its visitors' requests (URL, status, referrer) were reported to
 *   the collector the first tenant named (success_fraction 1: every request, not only failures);
 * - `Report-To` likewise: browsers keep its endpoint groups for the host (and, with include_subdomains,
 *   the hosts under it) up to its max_age, and send the host's later reports there (NEL's, and documents'
 *   that name a group or fall back to `default`), whichever tenant serves the host by then.
 * - a `100 Continue` the origin sent unasked (as some servers do to every POST) was answered 502: undici
 *   closes the connection on any 100 (unit cases: upstream/unasked-continue.unit.test.ts).
 * - interim answers without end (and a 100 whose head never ends, which undici never sees to bound) were
 *   read for as long as the origin had to answer, as fast as it wrote them, paced by no client: one
 *   origin flooding 1xx answers kept a replica's CPU busy for its whole timeout, other tenants waiting.
 * - an answer head of thousands of short header lines (8,000 fit undici's 16 KiB of names and values) was
 *   parsed, copied and written to the client line by line: tens of times the CPU and heap of an ordinary
 *   answer per request, for every client of the tenant, on a replica other tenants share; an upgrade's
 *   answer (a refusal, a 101, a 1xx before it), read by node's parser, was relayed with 2,000 of them.
 * - a chunked answer's trailer section of thousands of short lines (undici bounds it as a head, by its
 *   names and values) was parsed in full for every answer: tens of times an ordinary answer's CPU (the
 *   trailers are not even relayed).
 * - the answers to an M-SEARCH request (its method has a `-`) escaped the reading of the origin's answers
 *   that does all of the above: its unasked 100 was answered 502, its thousands of header lines relayed.
 * - an empty line (CRLF) before a status line, which undici skips, hid the answer from that reading too,
 *   and every answer after it on the connection: 1xx answers without bound, thousands of header lines
 *   relayed, an unasked 100 answered 502; empty lines without end were read until the origin timeout.
 */
const ALT_SVC = 'h2="alt.attacker.test:443"; ma=31536000; persist=1';
const NEL = '{"report_to":"collector","max_age":31536000,"include_subdomains":true,"success_fraction":1}';
const REPORT_TO =
  '{"group":"default","max_age":31536000,"include_subdomains":true,"endpoints":[{"url":"https://collector.attacker.test/r"}]}';
const REPORTING_ENDPOINTS = 'csp="https://collector.answers.test/csp"';
const CUSTOM_DOMAIN = 'shop.answers.test';

/** Interim answers an origin sends before its final `200 ok`, by path (`…/trickled`: a byte at a time). */
const INTERIM_THEN_OK: Record<string, string> = {
  '/continue': 'HTTP/1.1 100 Continue\r\n\r\n',
  '/continue/trickled': 'HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n',
  '/continues': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 100\r\n\r\n',
  // Empty lines before a status line, which undici skips.
  '/continue/after-empty-lines': '\r\n\nHTTP/1.1 100 Continue\r\n\r\n\r\n',
  '/hints-and-continue': `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n`,
  '/hints-and-continue/trickled':
    'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n',
};

/**
 * Interim answers an origin floods its answer with, by path: `/flood/<kind>/<count>`, then its final
 * answer (`/ws/flood/…`: a 101).
 */
const INTERIM_FLOODS: Record<string, string> = {
  '/flood/hints': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n',
  '/flood/continue': 'HTTP/1.1 100 Continue\r\n\r\n',
  '/flood/processing': 'HTTP/1.1 102 Processing\r\n\r\n',
  '/flood/empty-lines': '\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n',
};
/** Far more than an origin sends before its answer (a few hints, a 100, an occasional 102). */
const FLOODED_INTERIM_ANSWERS = 1_000;

let gateway: TestGateway;
let origin: net.Server;

/** Answers by path, raw: `/clear/<directives>` and `/early` (1xx every 300 ms, final answer after 3 s). */
function startRawOrigin(): Promise<net.Server> {
  const server = net.createServer((socket) =>
    onRequestHeads(socket, (_head, path) => {
      if (path === '/ws-refuse') {
        socket.end(
          `HTTP/1.1 403 Forbidden\r\nClear-Site-Data: "cookies"\r\nAlt-Svc: ${ALT_SVC}\r\nNEL: ${NEL}\r\nReport-To: ${REPORT_TO}\r\nContent-Length: 2\r\n\r\nno`,
        );
        return;
      }
      if (path === '/ws-accept') {
        socket.end(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nClear-Site-Data: "cookies"\r\n' +
            `Alt-Svc: ${ALT_SVC}\r\nNEL: ${NEL}\r\nReport-To: ${REPORT_TO}\r\n\r\n`,
        );
        return;
      }
      if (path === '/flood/endless-head') {
        // A 100 whose header lines never end, written as fast as the gateway reads them.
        socket.write('HTTP/1.1 100 Continue\r\n');
        const lines = Buffer.from('X-Interim: 1\r\n'.repeat(1_000), 'latin1');
        const more = (): void => {
          while (!socket.destroyed) if (!socket.write(lines)) return void socket.once('drain', more);
        };
        more();
        return;
      }
      if (path === '/flood/endless-empty-lines') {
        // Empty lines before a status line that never comes (undici skips them as they come).
        const lines = Buffer.from('\r\n'.repeat(8_000), 'latin1');
        const more = (): void => {
          while (!socket.destroyed) if (!socket.write(lines)) return void socket.once('drain', more);
        };
        more();
        return;
      }
      const trailers = /^\/flood\/trailer-lines\/(\d+|malformed)$/.exec(path);
      if (trailers !== null) {
        // A chunked answer whose trailer section has `count` short lines (or one undici refuses).
        const section = trailers[1] === 'malformed' ? 'no colon\r\n' : 'x: v\r\n'.repeat(Number(trailers[1]));
        socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${section}\r\n`);
        return;
      }
      const lines = /^\/flood\/header-lines\/(\d+)$/.exec(path);
      if (lines !== null) {
        // Lines as short as they come, so that thousands stay under undici's bound on a head's bytes.
        const count = Number(lines[1]);
        socket.write(`HTTP/1.1 200 OK\r\n${'x: v\r\n'.repeat(count - 1)}Content-Length: 2\r\n\r\nok`);
        return;
      }
      const upgradeLines = /^\/ws\/flood\/header-lines\/(refusal|101|hints)\/(\d+)$/.exec(path);
      if (upgradeLines !== null) {
        const [, answer, count] = upgradeLines;
        const many = 'x: v\r\n'.repeat(Number(count) - 4);
        const switched =
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n';
        if (answer === 'refusal')
          socket.end(`HTTP/1.1 403 Forbidden\r\n${many}x: v\r\nx: v\r\nx: v\r\nContent-Length: 2\r\n\r\nno`);
        else if (answer === '101') socket.write(`${switched}${many}x: v\r\n\r\n`);
        else
          socket.write(
            `HTTP/1.1 103 Early Hints\r\n${many}x: v\r\nx: v\r\nx: v\r\nx: v\r\n\r\n${switched}\r\n`,
          );
        return;
      }
      const flood = /^(\/ws)?(\/flood\/[a-z-]+)\/(\d+)$/.exec(path);
      if (flood !== null) {
        const [, upgrade, kind, count] = flood;
        const final = upgrade
          ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'
          : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
        socket.write(`${INTERIM_FLOODS[kind!]!.repeat(Number(count))}${final}`);
        return;
      }
      if (path === '/early' || path.endsWith('/unread-body')) {
        // `…/unread-body`: the request's body is left unread (the gateway cannot send it whole).
        const unread = path !== '/early';
        if (unread) socket.pause();
        let sent = 0;
        const hints = setInterval(() => {
          if (socket.destroyed) return clearInterval(hints);
          if (++sent > 10) {
            clearInterval(hints);
            if (!unread) return void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate');
            socket.end('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate');
            socket.resume(); // reads (drops) the body, up to the gateway's closing the connection
            return;
          }
          socket.write('HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n');
        }, 300);
        return;
      }
      const interim = INTERIM_THEN_OK[path];
      if (interim !== undefined) {
        const answer = `${interim}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`;
        if (!path.endsWith('/trickled')) {
          socket.write(answer);
          return;
        }
        let at = 0;
        const trickle = setInterval(() => {
          if (socket.destroyed || at >= answer.length) return clearInterval(trickle);
          socket.write(answer[at++]!);
        }, 1);
        return;
      }
      if (path === '/nel') {
        socket.write(`HTTP/1.1 200 OK\r\nNEL: ${NEL}\r\nContent-Length: 2\r\n\r\nok`);
        return;
      }
      if (path === '/report-to') {
        socket.write(
          `HTTP/1.1 200 OK\r\nReport-To: ${REPORT_TO}\r\nReporting-Endpoints: ${REPORTING_ENDPOINTS}\r\nContent-Length: 2\r\n\r\nok`,
        );
        return;
      }
      if (path === '/proxy-authentication-info') {
        socket.write(
          'HTTP/1.1 200 OK\r\nProxy-Authentication-Info: nextnonce="gateway-hop"\r\n' +
            'Authentication-Info: nextnonce="client"\r\nContent-Length: 2\r\n\r\nok',
        );
        return;
      }
      if (path === '/ws-refuse/proxy-authentication-info') {
        socket.end(
          'HTTP/1.1 403 Forbidden\r\nProxy-Authentication-Info: nextnonce="gateway-hop"\r\nContent-Length: 2\r\n\r\nno',
        );
        return;
      }
      if (path === '/alt-svc') {
        socket.write(`HTTP/1.1 200 OK\r\nAlt-Svc: ${ALT_SVC}\r\nContent-Length: 2\r\n\r\nok`);
        return;
      }
      if (!path.startsWith('/clear/')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        return;
      }
      const directives = decodeURIComponent(path.slice('/clear/'.length));
      socket.write(`HTTP/1.1 200 OK\r\nClear-Site-Data: ${directives}\r\nContent-Length: 2\r\n\r\nok`);
    }),
  );
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  origin = await startRawOrigin();
  gateway = await startTestGateway();
  const originId = randomUUID();
  // The flooding answers fail their target: on a target of its own, which they may not eject or open.
  const floodingOriginId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'answers',
      customDomains: [CUSTOM_DOMAIN],
      origins: [
        {
          id: originId,
          targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
          // Below /early's final answer (after 3 s), above a trickled answer's bytes on a busy machine.
          timeout_seconds: 2,
        },
        {
          id: floodingOriginId,
          targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
          timeout_seconds: 2,
          circuit_breaker: { enabled: false },
          health_check: { passive: { enabled: false } },
        },
      ],
      routes: [
        // Stored before commands refused Clear-Site-Data, Alt-Svc, NEL and Report-To in route policies.
        {
          origin_id: originId,
          path_pattern: '/transform/*',
          response_headers: {
            set: { 'clear-site-data': '"cookies"', 'x-kept': 'yes' },
            add: { 'alt-svc': ALT_SVC, nel: NEL, 'report-to': REPORT_TO },
            remove: [],
          },
        },
        {
          origin_id: null,
          path_pattern: '/fixed',
          fixed_response: {
            status: 200,
            body: 'x',
            headers: {
              'clear-site-data': '"*"',
              'alt-svc': ALT_SVC,
              nel: NEL,
              'report-to': REPORT_TO,
              'x-kept': 'yes',
            },
          },
        },
        { origin_id: floodingOriginId, path_pattern: '/flood/*' },
        { origin_id: originId, path_pattern: '/route-timeout/*', timeouts: { response_headers_ms: 1_000 } },
        { origin_id: floodingOriginId, path_pattern: '/ws/flood/*' },
        { origin_id: originId, path_pattern: '/*' },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe("an origin's answer", () => {
  const clear = (host: string, directives: string) =>
    send(gateway, host, `/clear/${encodeURIComponent(directives)}`);

  it('never clears the cookies of the platform base domain: "cookies" and "*" are dropped on a subdomain', async () => {
    expect((await clear('answers.localhost', '"cookies", "storage"')).headers['clear-site-data']).toBe(
      '"storage"',
    );
    expect((await clear('answers.localhost', '"*"')).headers['clear-site-data']).toBeUndefined();
    expect((await clear('answers.localhost', '"cache"')).headers['clear-site-data']).toBe('"cache"');
  });

  it("keeps Clear-Site-Data whole on the tenant's own custom domain", async () => {
    expect((await clear(CUSTOM_DOMAIN, '"cookies", "storage"')).headers['clear-site-data']).toBe(
      '"cookies", "storage"',
    );
  });

  // Regression: only the proxied answer's Clear-Site-Data was scoped; a WebSocket upgrade's answers and
  // a route's own headers (response transform, fixed response) still cleared every tenant's cookies.
  it('is scoped on WebSocket upgrade answers too, the 101 and a relayed refusal', async () => {
    const refused = await sendUpgrade(gateway, 'answers.localhost', '/ws-refuse');
    expect(refused.status).toBe(403);
    expect(refused.headers['clear-site-data']).toBeUndefined();
    const switched = await sendUpgrade(gateway, 'answers.localhost', '/ws-accept');
    expect(switched.status).toBe(101);
    expect(switched.headers['clear-site-data']).toBeUndefined();
  });

  it('never comes from a stored route policy: response transforms and fixed responses drop it', async () => {
    for (const path of ['/transform/x', '/fixed']) {
      const answer = await send(gateway, 'answers.localhost', path);
      expect(answer.headers['clear-site-data'], path).toBeUndefined();
      expect(answer.headers['x-kept'], path).toBe('yes');
    }
  });

  it("never relays Alt-Svc: no tenant sends its host's future connections elsewhere", async () => {
    for (const host of ['answers.localhost', CUSTOM_DOMAIN]) {
      const answer = await send(gateway, host, '/alt-svc');
      expect(answer.status, host).toBe(200);
      expect(answer.headers['alt-svc'], host).toBeUndefined();
    }
    const refused = await sendUpgrade(gateway, 'answers.localhost', '/ws-refuse');
    expect(refused.headers['alt-svc']).toBeUndefined();
    const switched = await sendUpgrade(gateway, 'answers.localhost', '/ws-accept');
    expect(switched.status).toBe(101);
    expect(switched.headers['alt-svc']).toBeUndefined();
    for (const path of ['/transform/x', '/fixed']) {
      const answer = await send(gateway, 'answers.localhost', path);
      expect(answer.headers['alt-svc'], path).toBeUndefined();
      expect(answer.headers['x-kept'], path).toBe('yes');
    }
  });

  // Regression: an origin's Proxy-Authentication-Info was relayed to the client. Like Proxy-Authenticate
  // it is for the next client on the response chain only (RFC 9110 §11.7.3): the gateway, which sent the
  // origin no Proxy-Authorization of the client's.
  it('never relays Proxy-Authentication-Info, and relays Authentication-Info', async () => {
    const answer = await send(gateway, 'answers.localhost', '/proxy-authentication-info');
    expect(answer.status).toBe(200);
    expect(answer.headers['proxy-authentication-info']).toBeUndefined();
    expect(answer.headers['authentication-info']).toBe('nextnonce="client"');
    const refused = await sendUpgrade(gateway, 'answers.localhost', '/ws-refuse/proxy-authentication-info');
    expect(refused.status).toBe(403);
    expect(refused.headers['proxy-authentication-info']).toBeUndefined();
  });

  it("never relays NEL: no tenant has its host's later visitors reported to it", async () => {
    for (const host of ['answers.localhost', CUSTOM_DOMAIN]) {
      const answer = await send(gateway, host, '/nel');
      expect(answer.status, host).toBe(200);
      expect(answer.headers['nel'], host).toBeUndefined();
    }
    const refused = await sendUpgrade(gateway, 'answers.localhost', '/ws-refuse');
    expect(refused.headers['nel']).toBeUndefined();
    const switched = await sendUpgrade(gateway, 'answers.localhost', '/ws-accept');
    expect(switched.status).toBe(101);
    expect(switched.headers['nel']).toBeUndefined();
    for (const path of ['/transform/x', '/fixed']) {
      const answer = await send(gateway, 'answers.localhost', path);
      expect(answer.headers['nel'], path).toBeUndefined();
      expect(answer.headers['x-kept'], path).toBe('yes');
    }
  });

  it("never relays Report-To: no tenant has its host's later reports sent to its endpoints", async () => {
    for (const host of ['answers.localhost', CUSTOM_DOMAIN]) {
      const answer = await send(gateway, host, '/report-to');
      expect(answer.status, host).toBe(200);
      expect(answer.headers['report-to'], host).toBeUndefined();
      // Reporting-Endpoints configures only the document it comes with: nothing outlives the answer.
      expect(answer.headers['reporting-endpoints'], host).toBe(REPORTING_ENDPOINTS);
    }
    const refused = await sendUpgrade(gateway, 'answers.localhost', '/ws-refuse');
    expect(refused.headers['report-to']).toBeUndefined();
    const switched = await sendUpgrade(gateway, 'answers.localhost', '/ws-accept');
    expect(switched.status).toBe(101);
    expect(switched.headers['report-to']).toBeUndefined();
    for (const path of ['/transform/x', '/fixed']) {
      const answer = await send(gateway, 'answers.localhost', path);
      expect(answer.headers['report-to'], path).toBeUndefined();
      expect(answer.headers['x-kept'], path).toBe('yes');
    }
  });

  it('answers 504 when 1xx responses keep coming but no final one within the origin timeout', async () => {
    const answer = await send(gateway, 'answers.localhost', '/early');
    expect(answer.status).toBe(504);
    expect(answer.json()['error']).toMatchObject({ code: 'upstream_timeout' });
  });

  it.each(['/unread-body', '/route-timeout/unread-body'])(
    '%s: answers 504 when 1xx responses keep coming while the origin reads nothing of the body (origin and route timeouts)',
    async (path) => {
      // More than the socket buffers between the gateway and an origin that reads nothing take.
      const body = 'x'.repeat(10_000_000);
      const answer = await send(gateway, 'answers.localhost', path, { method: 'POST', body });
      expect(answer.status).toBe(504);
      expect(answer.json()['error']).toMatchObject({ code: 'upstream_timeout' });
    },
  );
});

describe('an origin that floods its answer with interim (1xx) answers', () => {
  it.each(Object.keys(INTERIM_FLOODS))(
    '%s: is answered 502 upstream_error past MAX_INTERIM_ANSWERS, its final answer not relayed',
    async (kind) => {
      const path = `${kind}/${FLOODED_INTERIM_ANSWERS}`;
      const answer = await send(gateway, 'answers.localhost', path);
      expect(answer.status).toBe(502);
      expect(answer.json()['error']).toMatchObject({ code: 'upstream_error' });
      const upgrade = await sendUpgrade(gateway, 'answers.localhost', `/ws${path}`);
      expect(upgrade.status).toBe(502);
      expect(JSON.parse(upgrade.text)['error']).toMatchObject({ code: 'upstream_error' });
    },
  );

  // A 100 whose head never ends; empty lines (which undici skips) before a status line that never comes.
  it.each(['endless-head', 'endless-empty-lines'])(
    '%s: is cut as any answer head too large: 502, not read until the timeout',
    async (kind) => {
      const answer = await send(gateway, 'answers.localhost', `/flood/${kind}`);
      expect(answer.status).toBe(502);
      expect(answer.json()['error']).toMatchObject({ code: 'upstream_error' });
    },
  );

  it.each(Object.keys(INTERIM_FLOODS))(
    '%s: MAX_INTERIM_ANSWERS of them are still read past',
    async (kind) => {
      const path = `${kind}/${MAX_INTERIM_ANSWERS}`;
      const answer = await send(gateway, 'answers.localhost', path);
      expect(answer.status).toBe(200);
      expect(answer.text).toBe('ok');
      expect((await sendUpgrade(gateway, 'answers.localhost', `/ws${path}`)).status).toBe(101);
    },
  );
});

describe('an origin whose answer head has thousands of header lines', () => {
  it.each(['GET', 'M-SEARCH'])(
    '%s: answered 502 upstream_error past MAX_ANSWER_HEADER_LINES, none of its lines relayed',
    async (method) => {
      const answer = await send(gateway, 'answers.localhost', '/flood/header-lines/5000', { method });
      expect(answer.status).toBe(502);
      expect(answer.json()['error']).toMatchObject({ code: 'upstream_error' });
      expect(answer.headers['x']).toBeUndefined();
    },
  );

  it('MAX_ANSWER_HEADER_LINES of them are still relayed', async () => {
    const answer = await send(gateway, 'answers.localhost', `/flood/header-lines/${MAX_ANSWER_HEADER_LINES}`);
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('ok');
    expect(answer.headers['x']).toBeDefined();
  });

  it.each(['refusal', '101', 'hints'])(
    'to a WebSocket upgrade (%s): 502 upstream_error past MAX_ANSWER_HEADER_LINES, none of its lines relayed',
    async (answer) => {
      const over = await sendUpgrade(gateway, 'answers.localhost', `/ws/flood/header-lines/${answer}/1000`);
      expect(over.status).toBe(502);
      expect(JSON.parse(over.text)['error']).toMatchObject({ code: 'upstream_error' });
      expect(over.headers['x']).toBeUndefined();
      const at = `/ws/flood/header-lines/${answer}/${MAX_ANSWER_HEADER_LINES}`;
      expect((await sendUpgrade(gateway, 'answers.localhost', at)).status).toBe(
        answer === 'refusal' ? 403 : 101,
      );
    },
  );
});

describe('an origin whose chunked answer has thousands of trailer lines', () => {
  /** What an HTTP/1.1 client receives of `path`, byte for byte, up to the gateway's closing the connection. */
  async function received(path: string): Promise<{ text: string; closed: boolean }> {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(`GET ${path} HTTP/1.1\r\nHost: answers.localhost\r\n\r\n`);
    const closed = await within(client.closed, 5_000, 'closed').then(
      () => true,
      () => false,
    );
    client.socket.destroy();
    return { text: client.received(), closed };
  }

  it('is cut past MAX_ANSWER_HEADER_LINES as a malformed trailer section is: the body never ends', async () => {
    const malformed = await received('/flood/trailer-lines/malformed');
    const flooded = await received('/flood/trailer-lines/5000');
    for (const { text, closed } of [malformed, flooded]) {
      expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
      expect(text).toContain('\r\n2\r\nok\r\n');
      // The chunked answer's last chunk never comes: the client knows it did not get the whole answer.
      expect(text.endsWith('0\r\n\r\n')).toBe(false);
      expect(closed).toBe(true);
    }
  });

  it('MAX_ANSWER_HEADER_LINES of them are still read: the answer is whole', async () => {
    const answer = await send(
      gateway,
      'answers.localhost',
      `/flood/trailer-lines/${MAX_ANSWER_HEADER_LINES}`,
    );
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('ok');
  });
});

describe('an origin that sends 100 (Continue) unasked (the gateway never forwards Expect)', () => {
  // RFC 9110 §15.2: a client must parse 1xx answers it did not expect; an unasked 100 is ignored (as
  // nginx and Envoy do), where undici dropped the connection and the request was answered 502.
  it.each(Object.keys(INTERIM_THEN_OK))(
    '%s: its final answer is relayed, the interim ones are not',
    async (path) => {
      // M-SEARCH: the one method the gateway takes with a character other than a letter.
      for (const method of ['GET', 'POST', 'M-SEARCH']) {
        const answer = await send(gateway, 'answers.localhost', path, {
          method,
          body: method === 'POST' ? 'hello' : '',
        });
        expect(answer.status, method).toBe(200);
        expect(answer.text, method).toBe('ok');
        expect(answer.headers['link'], method).toBeUndefined();
        expect(answer.headers['x-interim'], method).toBeUndefined();
      }
    },
  );
});
