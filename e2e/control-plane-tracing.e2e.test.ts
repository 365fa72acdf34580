import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_POINTS,
  eventually,
  freePort,
  type ServiceProcess,
  startService,
  stopAllServices,
  TestSystem,
  waitForHttp,
} from './harness.js';

/**
 * The control plane as its own process (`node --import tsx main.ts`, an ES module) with
 * OTEL_ENABLED=true, exporting to a stand-in OTLP/HTTP collector: every admin API request is one
 * SERVER span named by its route template. Regression test: the control plane relied on
 * OpenTelemetry's HTTP instrumentation, which never patched the node:http its ES module imports had
 * loaded, so no span was ever exported. It also pins what a collector receives from the SDK set-up
 * (shared/src/observability/trace-sdk.ts): the resource, the sampler settings, the spans still queued
 * at shutdown.
 */

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
  links?: Array<{ traceId: string; spanId: string }>;
  status?: { code?: number };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpExport {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}
/** A span as exported, with the attributes of the resource (the process) it was exported under. */
interface ExportedSpan {
  span: OtlpSpan;
  resource: Record<string, string>;
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_CODE_ERROR = 2;
/** A peer address of its own: the control plane trusts it as a proxy, and 127.0.0.1 not. */
const TRUSTED_PROXY = '127.0.0.2';

const exports: string[] = [];
const collector = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/traces') exports.push(Buffer.concat(chunks).toString());
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});

function otlpText(value: OtlpValue): string {
  return String(value.stringValue ?? value.intValue);
}

function exportedSpans(): ExportedSpan[] {
  return exports.flatMap((body) =>
    ((JSON.parse(body) as OtlpExport).resourceSpans ?? []).flatMap((resourceSpans) => {
      const resource = Object.fromEntries(
        (resourceSpans.resource?.attributes ?? []).map((entry) => [entry.key, otlpText(entry.value)]),
      );
      return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
        (scope.spans ?? []).map((span) => ({ span, resource })),
      );
    }),
  );
}

function exportedServerSpans(): ExportedSpan[] {
  return exportedSpans().filter(({ span }) => span.kind === SPAN_KIND_SERVER);
}

/** The CLIENT spans made while `server` was the active span (its PostgreSQL statements, Redis commands). */
function clientSpansUnder(server: OtlpSpan): OtlpSpan[] {
  return exportedSpans()
    .map(({ span }) => span)
    .filter((span) => span.kind === SPAN_KIND_CLIENT && span.parentSpanId === server.spanId);
}

function attribute(span: OtlpSpan, key: string): string | undefined {
  const value = span.attributes?.find((entry) => entry.key === key)?.value;
  return value === undefined ? undefined : otlpText(value);
}

/** The one SERVER span whose url.path is `path` (each request below has a path of its own). */
async function exportedSpanOf(path: string): Promise<ExportedSpan> {
  let found: ExportedSpan[] = [];
  await eventually(
    `the SERVER span of ${path} is exported`,
    async () => {
      found = exportedServerSpans().filter(({ span }) => attribute(span, 'url.path') === path);
      return found.length > 0;
    },
    { timeoutMs: 20_000 },
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

async function spanOf(path: string): Promise<OtlpSpan> {
  return (await exportedSpanOf(path)).span;
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A request from a chosen local address (the peer the control plane sees). */
function requestFrom(
  localAddress: string,
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

let system: TestSystem;
let cp: ServiceProcess;
let url: string;

/** A control plane on `port` behind TRUSTED_PROXY, exporting its spans to the collector. */
function tracedControlPlaneEnv(port: number): Record<string, string> {
  return {
    ...system.commonEnv(),
    CONTROL_PLANE_PORT: String(port),
    CONTROL_PLANE_HOST: '127.0.0.1',
    CONTROL_PLANE_METRICS_PORT: '0',
    CONTROL_PLANE_TRUSTED_PROXIES: `${TRUSTED_PROXY}/32`,
    OTEL_ENABLED: 'true',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
  };
}

beforeAll(async () => {
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  system = await TestSystem.create();
  const port = await freePort();
  cp = startService('control-plane', ENTRY_POINTS.controlPlane, {
    ...tracedControlPlaneEnv(port),
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e',
  });
  system.services.push(cp);
  url = `http://127.0.0.1:${port}`;
  system.controlPlaneUrl = url;
  await waitForHttp(cp, `${url}/readyz`);
}, 120_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
  await new Promise((resolve) => collector.close(resolve));
}, 60_000);

describe('control plane tracing (OTEL_ENABLED=true, its own process)', () => {
  it('records a SERVER span per request, named by the route template, with its status', async () => {
    const subdomain = `traced-${hex(4)}`;
    const created = await system.admin('POST', '/api/v1/tenants', { body: { name: 'Traced', subdomain } });
    expect(created.status, cp.tail()).toBe(201);
    const create = await spanOf('/api/v1/tenants');
    expect(create.name).toBe('POST /api/v1/tenants');
    expect(attribute(create, 'http.route')).toBe('/api/v1/tenants');
    expect(attribute(create, 'http.request.method')).toBe('POST');
    expect(attribute(create, 'http.response.status_code')).toBe('201');
    expect(create.status?.code).not.toBe(STATUS_CODE_ERROR);

    // Refused by a router mounted at /api/v1: the name is still the template, never the id.
    const absent = randomUUID();
    expect((await system.admin('DELETE', `/api/v1/tenants/${absent}`)).status).toBe(404);
    const remove = await spanOf(`/api/v1/tenants/${absent}`);
    expect(remove.name).toBe('DELETE /api/v1/tenants/:id');
    expect(attribute(remove, 'http.response.status_code')).toBe('404');

    // No route matched: the method alone.
    const unknownPath = `/no-such-endpoint-${hex(4)}`;
    expect((await fetch(`${url}${unknownPath}`)).status).toBe(404);
    const unmatched = await spanOf(unknownPath);
    expect(unmatched.name).toBe('GET');
    expect(attribute(unmatched, 'http.route')).toBeUndefined();
  });

  it("shows an admin command's PostgreSQL statements, its event-store append among them, as CLIENT spans under its SERVER span", async () => {
    const created = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Statements', subdomain: `statements-${hex(4)}` },
    });
    expect(created.status, cp.tail()).toBe(201);
    const tenantId = String(created.body['id']);
    const secretName = `renamed-${hex(8)}`;
    const path = `/api/v1/tenants/${tenantId}`;
    const renamed = await system.admin('PATCH', path, { body: { name: secretName } });
    expect(renamed.status, renamed.text).toBe(200);
    const server = await spanOf(path);
    let statements: OtlpSpan[] = [];
    await eventually(
      "the command's event-store append is exported",
      async () => {
        statements = clientSpansUnder(server);
        return statements.some((span) => span.name === 'SELECT event_store_append');
      },
      { timeoutMs: 20_000 },
    );
    const append = statements.find((span) => span.name === 'SELECT event_store_append');
    expect(append?.traceId).toBe(server.traceId);
    expect(attribute(append!, 'db.system.name')).toBe('postgresql');
    expect(attribute(append!, 'db.operation.name')).toBe('SELECT');
    expect(attribute(append!, 'db.query.summary')).toBe('SELECT event_store_append');
    // The statements' values (the new name among them) are never recorded.
    expect(JSON.stringify(statements)).not.toContain(secretName);
  });

  it('exports each span with the resource that names the service, its process and host', async () => {
    const path = `/api/v1/tenants/${randomUUID()}`;
    await system.admin('GET', path);
    const { resource } = await exportedSpanOf(path);
    expect(resource).toMatchObject({
      'service.name': 'control-plane',
      'deployment.environment.name': 'e2e',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.language': 'nodejs',
      'process.pid': String(cp.child.pid),
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
      'host.name': os.hostname(),
    });
  });

  it("starts a new trace for an untrusted caller's traceparent and links the caller's context", async () => {
    const callerTrace = hex(16);
    const callerSpan = hex(8);
    const path = `/api/v1/tenants/${randomUUID()}`;
    await system.admin('GET', path, { headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` } });
    const span = await spanOf(path);
    expect(span.traceId).not.toBe(callerTrace);
    expect(span.parentSpanId ?? '').toBe('');
    expect(span.links).toEqual([expect.objectContaining({ traceId: callerTrace, spanId: callerSpan })]);
  });

  it("continues a trusted proxy's trace context", async () => {
    const callerTrace = hex(16);
    const callerSpan = hex(8);
    const path = `/api/v1/tenants/${randomUUID()}`;
    const status = await requestFrom(TRUSTED_PROXY, `${url}${path}`, 'GET', {
      authorization: `Bearer ${await system.token()}`,
      traceparent: `00-${callerTrace}-${callerSpan}-01`,
    });
    expect(status).toBe(404);
    const span = await spanOf(path);
    expect(span.traceId).toBe(callerTrace);
    expect(span.parentSpanId).toBe(callerSpan);
    expect(span.links ?? []).toEqual([]);
  });

  it('keeps credentials out of span attributes (query, Authorization)', async () => {
    const token = await system.token();
    const secret = `secret-${hex(8)}`;
    const path = `/api/v1/tenants/${randomUUID()}`;
    await system.admin('GET', `${path}?access_token=${secret}&api_key=${secret}`, { token });
    const span = await spanOf(path);
    const recorded = JSON.stringify(span);
    expect(recorded).not.toContain(secret);
    expect(recorded).not.toContain(token);
  });
});

describe('control plane tracing settings (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER/_ARG, shutdown)', () => {
  it('samples by OTEL_TRACES_SAMPLER/_ARG and exports the spans still queued when it stops', async () => {
    const port = await freePort();
    const sampled = startService('control-plane-sampled', ENTRY_POINTS.controlPlane, {
      ...tracedControlPlaneEnv(port),
      OTEL_SERVICE_NAME: 'control-plane-sampled',
      // No new trace is sampled; a trusted proxy's sampled one is continued.
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
      // Far longer than the test: spans leave the queue only when the process stops.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    system.services.push(sampled);
    const sampledUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(sampled, `${sampledUrl}/readyz`);

    const token = await system.token();
    const continued = `/api/v1/tenants/${randomUUID()}`;
    const notSampledByCaller = `/api/v1/tenants/${randomUUID()}`;
    const newTrace = `/api/v1/tenants/${randomUUID()}`;
    const callerTrace = hex(16);
    await requestFrom(TRUSTED_PROXY, `${sampledUrl}${continued}`, 'GET', {
      authorization: `Bearer ${token}`,
      traceparent: `00-${callerTrace}-${hex(8)}-01`,
    });
    await requestFrom(TRUSTED_PROXY, `${sampledUrl}${notSampledByCaller}`, 'GET', {
      authorization: `Bearer ${token}`,
      traceparent: `00-${hex(16)}-${hex(8)}-00`,
    });
    await requestFrom('127.0.0.1', `${sampledUrl}${newTrace}`, 'GET', { authorization: `Bearer ${token}` });
    await sampled.stop(20_000);

    const fromSampled = exportedServerSpans().filter(
      ({ resource }) => resource['service.name'] === 'control-plane-sampled',
    );
    expect(
      fromSampled.map(({ span }) => attribute(span, 'url.path')),
      sampled.tail(),
    ).toEqual([continued]);
    expect(fromSampled[0]?.span.traceId).toBe(callerTrace);
  });
});
