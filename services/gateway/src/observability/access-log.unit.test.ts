import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayExchange } from '../pipeline/exchange.js';
import { AccessLog } from './access-log.js';
import { accessLogLine } from './access-log-line.js';
import type { LineSink } from './batched-line-writer.js';

const TENANT = { id: '8c6f3e0a-6f5e-4b7a-9d0e-3f1b2a4c5d6e' } as CompiledTenant;
const ROUTE = { config: { id: '1b2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b' } } as CompiledRoute;

function exchangeFor(url: string, method = 'GET', clientIp = '203.0.113.9'): GatewayExchange {
  const req = { method, url, headers: {} } as IncomingMessage;
  return new GatewayExchange(req, {} as ServerResponse, 'req-1', clientIp);
}

const FIELDS = [
  'timestamp',
  'level',
  'service',
  'message',
  'kind',
  'request_id',
  'trace_id',
  'tenant_id',
  'route_id',
  'method',
  'path',
  'status',
  'latency_ms',
  'upstream_target',
  'upstream_ms',
  'auth',
  'rate_limit',
  'cache',
  'error_code',
  'client_ip',
  'retries',
  'resends',
  'response_complete',
  'bytes_received',
  'bytes_sent',
  'close_code',
  'closed_by',
  'user_agent',
];

describe('access-log line', () => {
  it('is one JSON line with the same fields in the same order whatever the request reached', () => {
    const early = exchangeFor('/nowhere');
    early.errorCode = 'tenant_not_found';
    const routed = exchangeFor('/api/orders?x=1');
    routed.tenant = TENANT;
    routed.route = ROUTE;
    routed.path = '/api/orders';
    routed.traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    routed.upstreamTarget = 'http://127.0.0.1:9000';
    routed.upstreamMs = 1.23456;
    routed.rateLimitOutcome = 'allowed';
    routed.cacheOutcome = 'MISS';
    routed.retries = 1;
    routed.resends = 1;
    const now = Date.parse('2026-11-30T12:00:00.123Z');

    const first = accessLogLine(early, 'gateway', 404, 0.5, now);
    const second = accessLogLine(routed, 'gateway', 200, 2.34567, now);
    for (const text of [first, second]) {
      expect(text.endsWith('}\n')).toBe(true);
      expect(text.indexOf('\n')).toBe(text.length - 1);
      expect(Object.keys(JSON.parse(text))).toEqual(FIELDS);
    }
    expect(JSON.parse(first)).toMatchObject({
      timestamp: '2026-11-30T12:00:00.123Z',
      level: 'info',
      message: 'request',
      kind: 'access',
      tenant_id: null,
      route_id: null,
      path: '/nowhere',
      status: 404,
      error_code: 'tenant_not_found',
      auth: 'anonymous',
    });
    expect(JSON.parse(second)).toMatchObject({
      request_id: 'req-1',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      tenant_id: TENANT.id,
      route_id: ROUTE.config.id,
      method: 'GET',
      path: '/api/orders',
      status: 200,
      latency_ms: 2.346,
      upstream_target: 'http://127.0.0.1:9000',
      upstream_ms: 1.235,
      rate_limit: 'allowed',
      cache: 'MISS',
      error_code: null,
      client_ip: '203.0.113.9',
      retries: 1,
      resends: 1,
      response_complete: true,
    });
  });

  // Regression: a request refused before its path was normalised (unknown host, bad path) was logged
  // with its raw target, query included: `?access_token=<a WebSocket client's JWT>` went to the log.
  it('never logs the query of a request refused before its path was read, which may hold a credential', () => {
    const refused = exchangeFor('/api/ws?access_token=eyJhbGciOi.secret.signature&x=1');
    refused.errorCode = 'tenant_not_found';
    const line = accessLogLine(refused, 'gateway', 404, 0.5);
    expect(JSON.parse(line)).toMatchObject({ path: '/api/ws', status: 404 });
    expect(line).not.toContain('secret');
  });

  // Regression: a request in absolute form (`GET http://user:password@host/path`, as sent to a forward
  // proxy) refused before its path was read was logged with the password of its URL.
  it('never logs the user information of an absolute-form target', () => {
    for (const target of [
      'http://alice:hunter2@api.example.com/v1/orders?x=1',
      'HTTPS://alice:hunter2@weird@api.example.com',
    ]) {
      const refused = exchangeFor(target);
      refused.errorCode = 'invalid_path';
      const line = accessLogLine(refused, 'gateway', 400, 0.5);
      expect(line).not.toContain('hunter2');
      expect(line).not.toContain('alice');
    }
    expect(
      JSON.parse(accessLogLine(exchangeFor('http://alice:hunter2@api.example.com/v1?x'), 'gateway', 400, 1)),
    ).toMatchObject({ path: 'http://api.example.com/v1' });
  });

  // Regression: user information was cut from every target that was neither origin nor absolute form,
  // so one node's parser accepts after `*` (`*/@/admin`) was logged as the path `/admin`, a request it
  // never was. Only a CONNECT's authority form (`user:password@host:443`) has user information there.
  it('keeps every character of a target that is not in authority form, `@` included', () => {
    for (const target of ['*', '*/@/admin', '*@internal.example:443']) {
      const refused = exchangeFor(target, 'OPTIONS');
      refused.errorCode = 'invalid_path';
      expect(JSON.parse(accessLogLine(refused, 'gateway', 400, 0.5)), target).toMatchObject({ path: target });
    }
    const connect = exchangeFor('alice:hunter2@api.example.com:443', 'CONNECT');
    connect.errorCode = 'method_not_supported';
    expect(JSON.parse(accessLogLine(connect, 'gateway', 405, 0.5))).toMatchObject({
      path: 'api.example.com:443',
    });
  });

  it('escapes what the client sent, so a crafted path or forwarded address cannot forge fields', () => {
    const crafted = exchangeFor('/a"b\\c', 'G"ET', '1.2.3.4", "status": 200, "x": "');
    crafted.path = '/a","status":200,"evil":"\u2028';
    crafted.traceId = 'abc"def';
    const parsed = JSON.parse(accessLogLine(crafted, 'gateway', 400, 1)) as Record<string, unknown>;
    expect(parsed['path']).toBe('/a","status":200,"evil":"\u2028');
    expect(parsed['method']).toBe('G"ET');
    expect(parsed['client_ip']).toBe('1.2.3.4", "status": 200, "x": "');
    expect(parsed['trace_id']).toBe('abc"def');
    expect(parsed['status']).toBe(400);
    expect(Object.keys(parsed)).toEqual(FIELDS);
  });

  it('writes no C1 control or DEL as it is, so a terminal showing the line acts on none', () => {
    const controls = '\x9b2J\x9d52;c;eA==\x9c\x7f';
    const crafted = exchangeFor(`/a${controls}`);
    (crafted.req.headers as Record<string, string>)['user-agent'] = `ua${controls}`;
    const line = accessLogLine(crafted, 'gateway', 404, 1);
    expect(line).not.toMatch(/[\u007f-\u009f]/);
    expect(line).toContain('"user_agent":"ua\\u009b2J\\u009d52;c;eA==\\u009c\\u007f"');
    expect(JSON.parse(line)).toMatchObject({ path: `/a${controls}`, user_agent: `ua${controls}` });
  });

  it('logs the user agent escaped as every client-controlled field, and at most its first 512 characters', () => {
    const crafted = exchangeFor('/api');
    (crafted.req.headers as Record<string, string>)['user-agent'] = 'x","status":200,"evil":"\u2028\u0001';
    expect(JSON.parse(accessLogLine(crafted, 'gateway', 200, 1))).toMatchObject({
      user_agent: 'x","status":200,"evil":"\u2028\u0001',
      status: 200,
    });
    const long = exchangeFor('/api');
    (long.req.headers as Record<string, string>)['user-agent'] = 'U'.repeat(16_000);
    const line = accessLogLine(long, 'gateway', 200, 1);
    expect(JSON.parse(line)).toMatchObject({ user_agent: `${'U'.repeat(512)}…` });
    expect(line.length).toBeLessThan(1500);
    expect(JSON.parse(accessLogLine(exchangeFor('/api'), 'gateway', 200, 1))).toMatchObject({
      user_agent: null,
      bytes_received: null,
      bytes_sent: null,
    });
  });

  // Regression: a client's 16 KB request target went into its line whole, so one tenant's clients
  // filled the replica's shared log buffer six times sooner and other tenants' lines were dropped.
  it('logs at most the first 2,048 characters of a long path, marked as cut', () => {
    const long = `/api/${'a'.repeat(16_000)}`;
    for (const exchange of [exchangeFor(long), exchangeFor(`${long}?q=1`)]) {
      const routed = exchangeFor('/x');
      routed.path = long;
      for (const line of [
        accessLogLine(exchange, 'gateway', 404, 1),
        accessLogLine(routed, 'gateway', 200, 1),
      ]) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        expect(parsed['path']).toBe(`${long.slice(0, 2048)}…`);
        expect(line.length).toBeLessThan(3000);
      }
    }
    const exact = exchangeFor('/x');
    exact.path = `/${'b'.repeat(2047)}`;
    expect(JSON.parse(accessLogLine(exact, 'gateway', 200, 1))).toMatchObject({ path: exact.path });
  });
  // Regression: a line reaches a pipe in one write of at most PIPE_BUF (4,096) bytes, which the kernel
  // neither splits nor interleaves with the service log lines written to the same stdout. Escapes made
  // one request's line (a refused target of `"`, a user agent of C1 controls) about 7,700 bytes, and a
  // character past ASCII took two bytes where the batches counted one.
  it('is at most 4,096 bytes of ASCII whatever the client sent, its longest values cut and marked', () => {
    const hostile = exchangeFor(`/${'"'.repeat(16_000)}`, 'M\x9b'.repeat(40));
    (hostile.req.headers as Record<string, string>)['user-agent'] = '\x9b\xe9'.repeat(8_000);
    hostile.traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    hostile.upstreamTarget = `http://${'t'.repeat(120)}…`;
    const line = accessLogLine(hostile, 'gateway', 400, 1);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
    expect(line).toMatch(/^[\x20-\x7e]+\n$/);
    const parsed = JSON.parse(line) as Record<string, string>;
    expect(Object.keys(parsed)).toEqual(FIELDS);
    expect(parsed['path']).toMatch(/^\/"{500,}…$/);
    expect(parsed['user_agent']).toMatch(/^(\x9b\xe9){40,}\x9b?…$/);
    // Past ASCII, written as escapes that parse back as sent.
    const accented = exchangeFor('/caf\u00e9');
    (accented.req.headers as Record<string, string>)['user-agent'] = 'Caf\u00e9 \u2028 \ud83d\ude00';
    const plain = accessLogLine(accented, 'gateway', 200, 1);
    expect(plain).toMatch(/^[\x20-\x7e]+\n$/);
    expect(JSON.parse(plain)).toMatchObject({
      path: '/caf\u00e9',
      user_agent: 'Caf\u00e9 \u2028 \ud83d\ude00',
    });
  });

  // Regression: an HTTP/2 client's `:method` may be any token up to the header limit; a 16 KB one was
  // refused 400 invalid_method and logged whole, filling the replica's shared log buffer as a long path did.
  // Regression: a refused request's whole target had its credential `;` parameters redacted before the
  // line kept its first 2,048 characters: a target of the header limit (up to 1 MiB) made of them cost
  // the replica a redaction of every one, for each such request.
  it('redacts only the part of a long refused target it logs', () => {
    const target = `/${';session=x'.repeat(100_000)}`;
    const decode = vi.spyOn(globalThis, 'decodeURIComponent');
    try {
      const { path } = JSON.parse(accessLogLine(exchangeFor(target), 'gateway', 400, 1)) as { path: string };
      expect(path.startsWith('/;session=<redacted>;session=<redacted>')).toBe(true);
      expect(path.endsWith('…')).toBe(true);
      expect(path).not.toContain('=x');
      expect(decode.mock.calls.length).toBeLessThan(1_000);
    } finally {
      decode.mockRestore();
    }
  });

  it('logs at most the first 32 characters of a long method, marked as cut', () => {
    const method = 'X'.repeat(16_000);
    const line = accessLogLine(exchangeFor('/api', method), 'gateway', 400, 1);
    expect(JSON.parse(line)).toMatchObject({ method: `${'X'.repeat(32)}…`, path: '/api' });
    expect(line.length).toBeLessThan(1000);
    for (const kept of ['MKCALENDAR', 'X'.repeat(32)])
      expect(JSON.parse(accessLogLine(exchangeFor('/api', kept), 'gateway', 400, 1))).toMatchObject({
        method: kept,
      });
  });
});

describe('access log', () => {
  function recording() {
    const lines: Array<Record<string, unknown>> = [];
    const sink: LineSink = {
      write(batch, done) {
        for (const text of batch.split('\n')) if (text !== '') lines.push(JSON.parse(text));
        done();
      },
    };
    return { lines, sink };
  }

  it('logs every 5xx even when successful requests are sampled away', async () => {
    const { lines, sink } = recording();
    const log = new AccessLog({ sink, sampleRate: 0, maxBufferedChars: 1 << 20, registry: new Registry() });
    log.record(exchangeFor('/ok'), 200, 1);
    log.record(exchangeFor('/broken'), 502, 1);
    await log.flush();
    expect(lines.map((line) => [line['path'], line['status']])).toEqual([['/broken', 502]]);
  });

  it('samples 508 loop_detected like a 4xx: any client can have one answered by sending CDN-Loop', async () => {
    const { lines, sink } = recording();
    const log = new AccessLog({ sink, sampleRate: 0, maxBufferedChars: 1 << 20, registry: new Registry() });
    log.record(exchangeFor('/looped'), 508, 1);
    log.record(exchangeFor('/broken'), 503, 1);
    await log.flush();
    expect(lines.map((line) => [line['path'], line['status']])).toEqual([['/broken', 503]]);
  });

  it('samples the 5xx a route answers itself (fixed_response) like a 4xx: its tenant chose them, its clients send them', async () => {
    const { lines, sink } = recording();
    const log = new AccessLog({ sink, sampleRate: 0, maxBufferedChars: 1 << 20, registry: new Registry() });
    const maintenance = exchangeFor('/maintenance');
    maintenance.errorCode = 'fixed_response';
    log.record(maintenance, 503, 1);
    const failed = exchangeFor('/broken');
    failed.errorCode = 'upstream_unreachable';
    log.record(failed, 502, 1);
    await log.flush();
    expect(lines.map((line) => [line['path'], line['status']])).toEqual([['/broken', 502]]);
  });

  it('samples 503 config_loading like a 4xx: any client can have one answered by naming a host no tenant holds', async () => {
    const { lines, sink } = recording();
    const log = new AccessLog({ sink, sampleRate: 0, maxBufferedChars: 1 << 20, registry: new Registry() });
    const loading = exchangeFor('/unknown-host');
    loading.errorCode = 'config_loading';
    log.record(loading, 503, 1);
    const failed = exchangeFor('/broken');
    failed.errorCode = 'internal_error';
    log.record(failed, 500, 1);
    await log.flush();
    expect(lines.map((line) => [line['path'], line['status']])).toEqual([['/broken', 500]]);
  });

  it('counts the lines it drops when its destination cannot keep up', async () => {
    const registry = new Registry();
    const stuck: LineSink = { write() {} }; // never completes
    const log = new AccessLog({ sink: stuck, sampleRate: 1, maxBufferedChars: 4096, registry });
    for (let i = 0; i < 100; i++) log.record(exchangeFor(`/r/${i}`), 200, 1); // ~450 characters each
    const metric = await registry.getSingleMetricAsString('vantageedge_gateway_access_log_dropped_total');
    const dropped = Number(/_total (\d+)/.exec(metric)?.[1]);
    expect(dropped).toBeGreaterThan(80);
    expect(dropped).toBeLessThan(100);
  });
});
