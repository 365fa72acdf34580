// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies’ own value-template syntax
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { compileConditions } from '../routing/match-conditions.js';
import {
  corsPolicy,
  corsPolicyInput,
  fixedResponse,
  fixedResponseInput,
  queryTransform,
  queryTransformInput,
  RESERVED_MAP_KEYS,
  redirect,
  redirectInput,
  requestHeaderTransform,
  requestHeaderTransformInput,
  responseHeaderTransform,
  responseHeaderTransformInput,
  routeMatch,
  routeMatchInput,
  trafficSplit,
  trafficSplitInput,
} from './route-policies.js';

/** Issues of a refused parse as `path: message`. */
function problems(schema: z.ZodType, raw: string): string[] {
  const result = schema.safeParse(JSON.parse(raw));
  expect(result.success, `${raw} should be refused`).toBe(false);
  return result.success
    ? []
    : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

/**
 * A `{ name: value }` map in a route policy a command gives must never lose an entry silently:
 * `__proto__` (which JSON.parse makes an own key but zod's record leaves out of its copy) and the other
 * names of Object.prototype's plumbing are refused, naming the key. Stored routes still load.
 */
describe('reserved names in route policy maps', () => {
  const MAPS: Array<[string, z.ZodType, (map: string) => string, string]> = [
    ['request_headers.set', requestHeaderTransformInput, (m) => `{"set":${m}}`, 'set'],
    ['request_headers.add', requestHeaderTransformInput, (m) => `{"add":${m}}`, 'add'],
    ['response_headers.set', responseHeaderTransformInput, (m) => `{"set":${m}}`, 'set'],
    ['response_headers.add', responseHeaderTransformInput, (m) => `{"add":${m}}`, 'add'],
    ['query.set', queryTransformInput, (m) => `{"set":${m}}`, 'set'],
    ['query.add', queryTransformInput, (m) => `{"add":${m}}`, 'add'],
    ['fixed_response.headers', fixedResponseInput, (m) => `{"status":200,"headers":${m}}`, 'headers'],
  ];

  it('are __proto__, constructor and prototype', () => {
    expect([...RESERVED_MAP_KEYS].sort()).toEqual(['__proto__', 'constructor', 'prototype']);
  });

  for (const [label, schema, wrap, field] of MAPS) {
    it.each(['__proto__', 'constructor', 'prototype'])(`${label}: refuses %s, naming it`, (key) => {
      expect(problems(schema, wrap(`{"x-ok":"1","${key}":"v"}`))).toEqual([
        `${field}.${key}: is a reserved name (__proto__, constructor and prototype are not allowed)`,
      ]);
    });

    // Header names are case-insensitive, and gateways lower-case them: `__Proto__` would be lost there.
    it.each(['__Proto__', '__PROTO__', 'Constructor', 'PROTOTYPE'])(
      `${label}: refuses %s, naming it (reserved names in any case)`,
      (key) => {
        expect(problems(schema, wrap(`{"x-ok":"1","${key}":"v"}`))).toEqual([
          `${field}.${key}: is a reserved name (__proto__, constructor and prototype are not allowed)`,
        ]);
      },
    );

    it(`${label}: still takes ordinary names`, () => {
      const parsed = schema.parse(JSON.parse(wrap('{"x-a":"1","x-proto":"2"}'))) as Record<string, unknown>;
      expect(parsed[field]).toEqual({ 'x-a': '1', 'x-proto': '2' });
    });
  }

  it('refuses a non-object where a map belongs as before', () => {
    expect(problems(requestHeaderTransformInput, '{"set":["x"]}')).toHaveLength(1);
    expect(problems(fixedResponseInput, '{"status":200,"headers":"x"}')).toHaveLength(1);
  });

  it('still loads a stored route that has one (gateways and read models keep serving it)', () => {
    expect(requestHeaderTransform.parse({ set: { constructor: 'v' } }).set).toEqual({ constructor: 'v' });
    expect(responseHeaderTransform.parse({ add: { prototype: 'v' } }).add).toEqual({ prototype: 'v' });
    expect(queryTransform.parse({ set: { constructor: 'v' } }).set).toEqual({ constructor: 'v' });
    expect(fixedResponse.parse({ status: 200, headers: { prototype: 'v' } }).headers).toEqual({
      prototype: 'v',
    });
  });
});

/**
 * Regression: lists of header names took `__proto__`, a name no request or answer through the gateway
 * carries (node:http drops it from HTTP/1.1 requests, the gateway from origins' answers): a condition
 * on it was met or not by the protocol the client spoke (HTTP/2 keeps it), a CORS or remove entry did
 * nothing. Commands refuse it in any case, naming the field, as the maps do; stored routes still load.
 */
describe('__proto__ in lists of header names', () => {
  const MESSAGE =
    "is __proto__, a header name no request or answer through the gateway carries (node:http drops it from HTTP/1.1 requests, the gateway from origins' answers)";
  const split = (extra: string) =>
    `{"origins":[{"origin_id":"00000000-0000-4000-8000-000000000001","weight":1},{"origin_id":"00000000-0000-4000-8000-000000000002","weight":1}],${extra}}`;
  const LISTS: Array<[string, z.ZodType, (name: string) => string]> = [
    ['headers.0.name', routeMatchInput, (name) => `{"headers":[{"name":"${name}","present":true}]}`],
    [
      'allow_headers.1',
      corsPolicyInput,
      (name) => `{"allow_origins":["*"],"allow_headers":["x-a","${name}"]}`,
    ],
    ['expose_headers.0', corsPolicyInput, (name) => `{"allow_origins":["*"],"expose_headers":["${name}"]}`],
    ['remove.0', requestHeaderTransformInput, (name) => `{"remove":["${name}"]}`],
    ['remove.0', responseHeaderTransformInput, (name) => `{"remove":["${name}"]}`],
    ['sticky.header', trafficSplitInput, (name) => split(`"sticky":{"header":"${name}"}`)],
    [
      'overrides.0.header',
      trafficSplitInput,
      (name) =>
        split(
          `"overrides":[{"header":"${name}","value":"v","origin_id":"00000000-0000-4000-8000-000000000001"}]`,
        ),
    ],
  ];

  for (const [field, schema, wrap] of LISTS) {
    it.each(['__proto__', '__Proto__', '__PROTO__'])(`${field}: refuses %s, naming it`, (name) => {
      expect(problems(schema, wrap(name))).toEqual([`${field}: ${MESSAGE}`]);
    });

    it(`${field}: still takes constructor and prototype (clients send them, gateways read them as sent)`, () => {
      expect(schema.safeParse(JSON.parse(wrap('constructor'))).success).toBe(true);
      expect(schema.safeParse(JSON.parse(wrap('prototype'))).success).toBe(true);
    });
  }

  it('still loads a stored route that has one', () => {
    expect(routeMatch.parse({ headers: [{ name: '__proto__', present: true }] }).headers).toHaveLength(1);
    expect(corsPolicy.parse({ allow_origins: ['*'], allow_headers: ['__proto__'] }).allow_headers).toEqual([
      '__proto__',
    ]);
    expect(requestHeaderTransform.parse({ remove: ['__proto__'] }).remove).toEqual(['__proto__']);
    expect(responseHeaderTransform.parse({ remove: ['__proto__'] }).remove).toEqual(['__proto__']);
    expect(trafficSplit.parse(JSON.parse(split('"sticky":{"header":"__proto__"}'))).sticky).toEqual({
      header: '__proto__',
    });
  });
});

/**
 * Regression: a route's response transform or fixed response could send `Clear-Site-Data: "cookies"`
 * on every answer, which on a platform subdomain clears the cookies of every tenant's visitors.
 */
describe('Clear-Site-Data in route policies', () => {
  it('is refused in a command, naming the header', () => {
    expect(
      problems(responseHeaderTransformInput, '{"set": {"Clear-Site-Data": "\\"cookies\\""}}').join('\n'),
    ).toContain('set.Clear-Site-Data');
    expect(
      problems(fixedResponseInput, '{"status": 503, "headers": {"clear-site-data": "\\"*\\""}}'),
    ).toEqual([
      expect.stringMatching(/^headers\.clear-site-data: clear-site-data cannot come from a route policy/),
    ]);
  });

  it('still loads in a stored route (the gateway drops it)', () => {
    expect(responseHeaderTransform.safeParse({ set: { 'clear-site-data': '"cookies"' } }).success).toBe(true);
    expect(fixedResponse.safeParse({ status: 503, headers: { 'clear-site-data': '"*"' } }).success).toBe(
      true,
    );
  });
});

/**
 * Regression: a route's response transform or fixed response could send `Alt-Svc`, which browsers keep
 * for the host (up to its `ma`, across networks with persist=1) and follow to the endpoint it names,
 * even after the subdomain or custom domain went to another tenant.
 */
describe('Alt-Svc in route policies', () => {
  it('is refused in a command, naming the header', () => {
    expect(
      problems(responseHeaderTransformInput, '{"add": {"Alt-Svc": "h2=\\"alt.example:443\\""}}').join('\n'),
    ).toContain('add.Alt-Svc');
    expect(problems(fixedResponseInput, '{"status": 503, "headers": {"alt-svc": "h3=\\":443\\""}}')).toEqual([
      expect.stringMatching(/^headers\.alt-svc: alt-svc cannot come from a route policy/),
    ]);
  });

  it('still loads in a stored route (the gateway drops it)', () => {
    expect(responseHeaderTransform.safeParse({ set: { 'alt-svc': 'clear' } }).success).toBe(true);
    expect(fixedResponse.safeParse({ status: 503, headers: { 'alt-svc': 'clear' } }).success).toBe(true);
  });
});

/**
 * Regression: a route's response transform or fixed response could send `NEL` (Network Error Logging),
 * which browsers keep for the host (up to its max_age) and act on for every later request to it: once
 * the subdomain or custom domain went to another tenant, its visitors' requests (URL with query, status,
 * referrer) were still reported to the endpoint the first tenant named.
 */
describe('NEL in route policies', () => {
  const POLICY = '{\\"report_to\\": \\"default\\", \\"max_age\\": 31536000, \\"success_fraction\\": 1}';

  it('is refused in a command, naming the header', () => {
    expect(problems(responseHeaderTransformInput, `{"set": {"NEL": "${POLICY}"}}`).join('\n')).toContain(
      'set.NEL',
    );
    expect(problems(fixedResponseInput, `{"status": 200, "headers": {"nel": "${POLICY}"}}`)).toEqual([
      expect.stringMatching(/^headers\.nel: nel cannot come from a route policy/),
    ]);
  });

  it('still loads in a stored route (the gateway drops it)', () => {
    expect(responseHeaderTransform.safeParse({ add: { nel: '{"max_age": 0}' } }).success).toBe(true);
    expect(fixedResponse.safeParse({ status: 200, headers: { nel: '{"max_age": 0}' } }).success).toBe(true);
  });
});

/**
 * Regression: a route's response transform or fixed response could send `Report-To`, whose endpoint
 * groups browsers keep for the host (up to its max_age, with include_subdomains for the hosts under it)
 * and send the host's later reports to (NEL's, and documents' that name a group or `default`): once the
 * host went to another tenant, its visitors' reports still went to the first tenant's endpoints.
 */
describe('Report-To in route policies', () => {
  const GROUP =
    '{\\"group\\": \\"default\\", \\"max_age\\": 31536000, \\"endpoints\\": [{\\"url\\": \\"https://r.example/\\"}]}';

  it('is refused in a command, naming the header', () => {
    expect(problems(responseHeaderTransformInput, `{"add": {"Report-To": "${GROUP}"}}`).join('\n')).toContain(
      'add.Report-To',
    );
    expect(problems(fixedResponseInput, `{"status": 200, "headers": {"report-to": "${GROUP}"}}`)).toEqual([
      expect.stringMatching(/^headers\.report-to: report-to cannot come from a route policy/),
    ]);
  });

  it('still loads in a stored route (the gateway drops it)', () => {
    expect(responseHeaderTransform.safeParse({ set: { 'report-to': '{"max_age": 0}' } }).success).toBe(true);
    expect(fixedResponse.safeParse({ status: 200, headers: { 'report-to': '{"max_age": 0}' } }).success).toBe(
      true,
    );
  });

  it('leaves Reporting-Endpoints to route policies: it configures only the document it comes with', () => {
    const headers = { 'reporting-endpoints': 'csp="https://r.example/"' };
    expect(fixedResponseInput.safeParse({ status: 200, headers }).success).toBe(true);
  });
});

/**
 * Regression: C1 controls (U+0080–U+009F; U+009B is CSI, U+009D is OSC on their own) in header and
 * query values. A header value in a JS string goes out as Latin-1, so U+009B is the byte 0x9B; and
 * operators read these values back (the CLI's dump, the console). Commands refuse them, naming the
 * field; RFC 9110's other obs-text (U+00A0–U+00FF) stays accepted. Stored routes recorded before the
 * rule still load (events already in the log must fold). A fixed response's body may hold anything.
 */
describe('C1 controls in header and query values', () => {
  const C1 = ['\u0080', '\u0085', '\u009b', '\u009d', '\u009f'];
  const COMMANDS: Array<[string, z.ZodType, (value: string) => unknown, string]> = [
    ['request_headers.set', requestHeaderTransformInput, (v) => ({ set: { 'x-a': v } }), 'set.x-a'],
    ['request_headers.add', requestHeaderTransformInput, (v) => ({ add: { 'x-a': v } }), 'add.x-a'],
    ['response_headers.set', responseHeaderTransformInput, (v) => ({ set: { 'x-a': v } }), 'set.x-a'],
    ['response_headers.add', responseHeaderTransformInput, (v) => ({ add: { 'x-a': v } }), 'add.x-a'],
    ['query.set', queryTransformInput, (v) => ({ set: { a: v } }), 'set.a'],
    ['query.add', queryTransformInput, (v) => ({ add: { a: v } }), 'add.a'],
    [
      'fixed_response.headers',
      fixedResponseInput,
      (v) => ({ status: 503, headers: { 'retry-after': v } }),
      'headers.retry-after',
    ],
    [
      'fixed_response.content_type',
      fixedResponseInput,
      (v) => ({ status: 503, content_type: v }),
      'content_type',
    ],
  ];
  const STORED: Array<[string, z.ZodType, (value: string) => unknown]> = [
    ['request_headers', requestHeaderTransform, (v) => ({ set: { 'x-a': v }, add: { 'x-b': v } })],
    ['response_headers', responseHeaderTransform, (v) => ({ set: { 'x-a': v }, add: { 'x-b': v } })],
    ['query', queryTransform, (v) => ({ set: { a: v }, add: { b: v } })],
    [
      'fixed_response',
      fixedResponse,
      (v) => ({ status: 503, headers: { 'retry-after': v }, content_type: v }),
    ],
  ];

  for (const [label, schema, wrap, field] of COMMANDS) {
    it(`${label}: a command is refused, naming the field`, () => {
      for (const control of C1) {
        const result = schema.safeParse(wrap(`60${control}2J`));
        expect(result.success, `${label} with U+${control.charCodeAt(0).toString(16)}`).toBe(false);
        if (result.success) continue;
        expect(result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual([
          expect.stringMatching(new RegExp(`^${field.replace('.', '\\.')}: .*control characters`)),
        ]);
      }
    });

    it(`${label}: Latin-1 text beyond C1 is still accepted`, () => {
      expect(schema.safeParse(wrap('café, naïve; ½ ÿ')).success).toBe(true);
    });
  }

  for (const [label, schema, wrap] of STORED) {
    it(`${label}: a stored route with one still loads`, () => {
      expect(schema.safeParse(wrap('60\u009b2J\u009d52;c;x\u009c')).success).toBe(true);
    });
  }

  it('a fixed response body may hold anything, C1 and bidi controls included', () => {
    const body = 'soon \u009b2J \u009d52;c;x\u009c ok\u202e)x( \u2066y\u2069';
    expect(fixedResponseInput.parse({ status: 503, body }).body).toBe(body);
  });
});

/**
 * Regression: hop-by-hop and HTTP/2 connection-specific headers in a route. A fixed response or response
 * transform with `keep-alive`, `upgrade`, `te` or `http2-settings` made node throw for every HTTP/2
 * client (and took the replica down); a request transform's `proxy-authorization` reached the origin.
 * The URL-rewrite and method-override headers the gateway drops from every peer are not a route's to
 * write either. Commands refuse them, naming the field; stored routes still load (the gateway drops them).
 */
describe('connection headers in route policies', () => {
  const CONNECTION = [
    'keep-alive',
    'proxy-connection',
    'te',
    'trailer',
    'upgrade',
    'http2-settings',
    'proxy-authenticate',
    'proxy-authorization',
  ];

  it.each(CONNECTION)('fixed_response.headers refuses %s, naming it', (name) => {
    expect(problems(fixedResponseInput, `{"status": 503, "headers": {"${name}": "x"}}`)).toEqual([
      expect.stringMatching(new RegExp(`^headers\\.${name}: `)),
    ]);
  });

  it.each(CONNECTION)('response_headers refuses %s in set, add and remove', (name) => {
    expect(problems(responseHeaderTransformInput, `{"set": {"${name}": "x"}}`)).toEqual([
      expect.stringMatching(new RegExp(`^set\\.${name}: `)),
    ]);
    expect(problems(responseHeaderTransformInput, `{"add": {"${name}": "x"}}`)).toEqual([
      expect.stringMatching(new RegExp(`^add\\.${name}: `)),
    ]);
    expect(problems(responseHeaderTransformInput, `{"remove": ["${name}"]}`)).toEqual([
      expect.stringMatching(/^remove\.0: /),
    ]);
  });

  it.each([
    ...CONNECTION,
    'x-original-url',
    'x-rewrite-url',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
  ])('request_headers refuses %s, naming it', (name) => {
    expect(problems(requestHeaderTransformInput, `{"set": {"${name.toUpperCase()}": "x"}}`)).toEqual([
      expect.stringMatching(new RegExp(`^set\\.${name.toUpperCase()}: `)),
    ]);
  });

  it('still loads a stored route with one (the gateway drops it)', () => {
    for (const name of CONNECTION) {
      expect(fixedResponse.safeParse({ status: 503, headers: { [name]: 'x' } }).success, name).toBe(true);
    }
    for (const name of ['te', 'http2-settings', 'proxy-authenticate', 'proxy-authorization'])
      expect(responseHeaderTransform.safeParse({ set: { [name]: 'x' } }).success, name).toBe(true);
    expect(
      requestHeaderTransform.safeParse({ set: { 'proxy-authorization': 'x', 'x-original-url': '/a' } })
        .success,
    ).toBe(true);
  });

  it('te: trailers and ordinary headers are still accepted where they were', () => {
    expect(responseHeaderTransformInput.safeParse({ set: { 'x-frame-options': 'DENY' } }).success).toBe(true);
    expect(requestHeaderTransformInput.safeParse({ set: { 'x-client-ip': '${client_ip}' } }).success).toBe(
      true,
    );
    expect(fixedResponseInput.safeParse({ status: 503, headers: { 'retry-after': '60' } }).success).toBe(
      true,
    );
  });
});

/**
 * PHP, Rack and WSGI servers read `_` and `-` in a header name alike (HTTP_X_REAL_IP either way): a
 * request transform writing X_Real_IP or x_vantageedge_user_id wrote the gateway's own headers to them.
 */
describe('request header names spelled with underscores', () => {
  it.each([
    ['X_VantageEdge_User_Id', 'x-vantageedge-user-id is set by the gateway'],
    ['x_real_ip', 'x-real-ip is set by the gateway'],
    ['x-forwarded_host', 'x-forwarded-host is set by the gateway'],
    ['x_original_url', 'x-original-url is dropped from every request'],
    ['proxy_authorization', 'proxy-authorization is hop-by-hop'],
  ])('request_headers refuses %s in set, add and remove, saying which header origins read', (name, says) => {
    const read = says.split(' ')[0];
    for (const raw of [`{"set": {"${name}": "x"}}`, `{"add": {"${name}": "x"}}`, `{"remove": ["${name}"]}`]) {
      const found = problems(requestHeaderTransformInput, raw);
      expect(found).toHaveLength(1);
      // remove lists names in lower case
      expect(found[0]!.toLowerCase()).toContain(
        `${name.toLowerCase()} is ${read} to origins that read _ as -`,
      );
      expect(found[0]).toContain(says);
    }
  });

  it('accepts other names with underscores, and the ones a route may write in any spelling', () => {
    const set = { x_custom_header: '1', x_api_key: 'k', x_client_ip: '${client_ip}' };
    expect(requestHeaderTransformInput.safeParse({ set }).success).toBe(true);
  });

  it('still loads a stored route with one (the gateway drops it)', () => {
    expect(requestHeaderTransform.safeParse({ set: { x_vantageedge_user_id: 'x' } }).success).toBe(true);
  });
});

/**
 * ${path} is the client's: a template that lets it stand where a browser reads the Location's host
 * (`/${path}` with a request for /evil.example is `//evil.example`) sends the tenant's visitors to any
 * site, from a link on the tenant's own host.
 */
describe('redirect locations whose host the request path chooses', () => {
  it.each([
    '/${path}',
    '//${path}',
    '\\${path}',
    '/\\${path}',
    'http:${path}',
    'https:${path}',
    'https:/${path}',
    '/${path}${query}',
    '/${query}${path}',
  ])('%s is refused, naming location', (location) => {
    expect(problems(redirectInput, JSON.stringify({ status: 301, location }))).toEqual([
      'location: lets the request path choose the host browsers go to (a request for /evil.example would be sent to evil.example): write ${path} right after a host, or at the start (it begins with /)',
    ]);
  });

  it.each([
    '${path}',
    '${path}${query}',
    '${path}/',
    '/v1${path}${query}',
    'https://new.example.com${path}${query}',
    'https://${host}${path}${query}',
    '//${host}${path}',
    'https://new.example.com/${path}',
    '/docs?from=${path}',
    'https://new.example.com/',
  ])('%s is accepted', (location) => {
    expect(redirectInput.safeParse({ status: 301, location }).success).toBe(true);
  });

  it('a stored one still loads', () => {
    expect(redirect.safeParse({ status: 301, location: '/${path}' }).success).toBe(true);
  });
});

/**
 * Regression: a 204 (and later a 205, RFC 9110 §15.3.6) with a body went out with Content-Length over
 * HTTP/1.1 and reset HTTP/2 streams.
 */
describe('fixed_response body of a status without content', () => {
  it.each([204, 205, 304])('%i with a body is refused, naming body', (status) => {
    expect(problems(fixedResponseInput, `{"status": ${status}, "body": "hello"}`)).toEqual([
      `body: must be empty: a ${status} answer has no body`,
    ]);
    expect(fixedResponseInput.safeParse({ status, body: '' }).success).toBe(true);
  });

  it('a stored one still loads (the gateway sends no body)', () => {
    expect(fixedResponse.safeParse({ status: 204, body: 'hello' }).success).toBe(true);
  });
});

describe('match conditions', () => {
  // Regression test: a condition on X-VantageEdge-User-Id was accepted, and met by any client sending it.
  it("refuses a header condition on the gateway's identity headers, naming it; a stored one still loads", () => {
    const raw =
      '{"headers": [{"name": "x-api-version", "exact": "2"}, {"name": "X-VantageEdge-User-Id", "exact": "u1"}]}';
    expect(problems(routeMatchInput, raw)).toEqual([
      expect.stringMatching(/^headers\.1\.name: x-vantageedge-\*/),
    ]);
    expect(routeMatch.safeParse(JSON.parse(raw)).success).toBe(true);
    expect(routeMatchInput.safeParse({ headers: [{ name: 'x-api-version', exact: '2' }] }).success).toBe(
      true,
    );
  });

  // Regression test: a condition on X-Real-IP, X-Forwarded-* or Forwarded was accepted and met by what
  // the client wrote there, while the origin received the gateway's values: a route for `X-Real-IP: 10.…`
  // (an "internal" route) was any client's. The same name spelled with `_` is read as it.
  it('refuses a header condition on a header the gateway writes for the origin, naming it', () => {
    for (const name of ['X-Real-IP', 'x-forwarded-for', 'X-Forwarded-Host', 'forwarded', 'x_real_ip']) {
      const raw = JSON.stringify({ headers: [{ name, prefix: '10.' }] });
      expect(problems(routeMatchInput, raw)).toEqual([
        expect.stringMatching(/^headers\.0\.name: .*written by the gateway/),
      ]);
      expect(routeMatch.safeParse(JSON.parse(raw)).success).toBe(true);
    }
    const identity = { headers: [{ name: 'x_vantageedge_user_id', exact: 'u1' }] };
    expect(routeMatchInput.safeParse(identity).success).toBe(false);
    for (const name of ['x-api-key', 'authorization', 'host', 'x-canary', 'user-agent']) {
      expect(routeMatchInput.safeParse({ headers: [{ name, present: true }] }).success).toBe(true);
    }
  });

  // Regression test: a header value no request carries as gateways read it (Latin-1 bytes, trimmed) was
  // accepted, and its route never taken.
  it('refuses a header value no request carries as gateways read it; a stored one still loads', () => {
    const raw = JSON.stringify({
      headers: [
        { name: 'x-a', exact: 'gold ' },
        { name: 'x-b', prefix: '\tgold' },
        { name: 'x-c', exact: '\u20ac' },
        { name: 'x-d', prefix: 'a\nb' },
      ],
      query: [{ name: 'q', exact: ' \u20ac\n' }],
    });
    expect(problems(routeMatchInput, raw)).toEqual([
      expect.stringMatching(/^headers\.0\.exact: must not start or end with a space or tab/),
      expect.stringMatching(/^headers\.1\.prefix: must not start with a space or tab/),
      expect.stringMatching(/^headers\.2\.exact: must be text a request header carries/),
      expect.stringMatching(/^headers\.3\.prefix: must be text a request header carries/),
    ]);
    expect(routeMatch.safeParse(JSON.parse(raw)).success).toBe(true);
    const carried = {
      headers: [
        { name: 'x-a', exact: 'gold\tplus caf\u00e9' },
        { name: 'x-b', prefix: 'Bearer ' },
      ],
    };
    expect(routeMatchInput.safeParse(carried).success).toBe(true);
  });

  // Regression test: values with U+0080–U+009F were refused as never met, but a client sending UTF-8
  // (curl, apps: `Москва`, `€`, `…`) has bytes 0x80–0x9F, which gateways read as those characters.
  it('takes a header value a UTF-8 client sends as gateways read it, U+0080–U+009F included', async () => {
    const headers = await headersReceived(['X-City: Москва', 'X-Price: 5 €', 'X-Title: a…b']);
    const values = ['x-city', 'x-price', 'x-title'].map((name) => headers[name] as string);
    expect(values.every((value) => /[\x80-\x9f]/.test(value))).toBe(true);
    const match = routeMatchInput.safeParse({
      headers: [
        { name: 'x-city', exact: values[0] },
        { name: 'x-price', prefix: values[1]!.slice(0, 4) },
        { name: 'x-title', exact: values[2] },
      ],
    });
    expect(match.error?.issues ?? []).toEqual([]);
    expect(compileConditions(match.data)!.test({ req: { headers }, query: '' }, false)).toBe(true);
    const origin = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;
    const split = trafficSplitInput.safeParse({
      origins: [
        { origin_id: origin(1), weight: 1 },
        { origin_id: origin(2), weight: 1 },
      ],
      overrides: [{ header: 'x-city', value: values[0], origin_id: origin(2) }],
    });
    expect(split.error?.issues ?? []).toEqual([]);
  });
});

/** The headers node reads (as a gateway does) from a request whose header lines are sent as UTF-8. */
async function headersReceived(lines: readonly string[]): Promise<IncomingHttpHeaders> {
  let received: IncomingHttpHeaders = {};
  const server = createServer((req, res) => {
    received = req.headers;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.end(
      Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\n${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`),
    );
    socket.resume();
    await once(socket, 'close');
  } finally {
    server.close();
  }
  return received;
}

// Origins read `scopes[]`, `scopes` and `Scopes` as one parameter, and ASP.NET Core and Spring read
// `page.size` as `page[size]`: a transform setting two of those would send the origin two values of it.
describe('a query transform command setting one parameter under two names', () => {
  it.each([
    [{ 'scopes[]': 'read', scopes: 'write' }, 'scopes'],
    [{ 'page.size': '50', 'page[size]': '10' }, 'page[size]'],
    [{ page_size: '50', 'page.size': '10' }, 'page.size'],
  ])('%o is refused, naming the second name', (set, second) => {
    const result = queryTransformInput.safeParse({ set });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error.issues.map((issue) => issue.path.join('.'))).toEqual([`set.${second}`]);
    expect(result.error.issues[0]!.message).toMatch(/same parameter/);
  });

  it('takes distinct names, and stored transforms as they are', () => {
    expect(
      queryTransformInput.safeParse({ set: { 'page.size': '50', page_sizes: '1', 'user[id]': '7' } }).success,
    ).toBe(true);
    expect(queryTransform.safeParse({ set: { 'scopes[]': 'read', scopes: 'write' } }).success).toBe(true);
  });
});
