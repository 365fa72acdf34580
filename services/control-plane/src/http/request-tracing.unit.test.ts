import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { startTelemetry, type TelemetryOptions } from '@vantageedge/shared/observability/telemetry';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceRequests } from './request-tracing.js';

type ExportedSpan = Parameters<NonNullable<TelemetryOptions['exporter']>['export']>[0][number];

const exported: ExportedSpan[] = [];
const telemetry = startTelemetry({
  serviceName: 'control-plane-tracing-test',
  enabled: true,
  exporter: {
    export: (spans, done) => {
      exported.push(...spans);
      done({ code: 0 });
    },
    shutdown: async () => {},
  },
});
const logStream = new PassThrough();
const logger = createLogger({ service: 'control-plane-tracing-test', stream: logStream });

/** An admin-API-shaped app: a router mounted at /api/v1 whose errors reach the app's error handler. */
function tracedApp(): express.Express {
  const app = express();
  app.use(traceRequests(app, { trustedProxies: [] }));
  const router = express.Router();
  router.get('/things/:id', (req, res) => {
    logger.info('handling a thing');
    res.json({ id: req.params['id'] });
  });
  router.delete('/things/:id', (_req, _res, next) => next(new Error('store down')));
  app.use('/api/v1', router);
  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found' } });
  });
  app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: { code: 'internal' } });
  });
  return app;
}

let server: Server;
let base: string;

beforeAll(async () => {
  server = tracedApp().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await telemetry.shutdown();
});

/** The one span of the request whose url.path is `path`. */
async function spanOf(path: string): Promise<ExportedSpan> {
  await telemetry.forceFlush();
  const found = exported.filter((span) => span.attributes['url.path'] === path);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('traceRequests', () => {
  it('names the span by the route template, with http.route and the status', async () => {
    const response = await fetch(`${base}/api/v1/things/1234?access_token=secret-value`);
    expect(response.status).toBe(200);
    const span = await spanOf('/api/v1/things/1234');
    expect(span.name).toBe('GET /api/v1/things/:id');
    expect(span.attributes['http.route']).toBe('/api/v1/things/:id');
    expect(span.attributes['http.response.status_code']).toBe(200);
    expect(span.attributes['server.address']).toBe('127.0.0.1');
    expect(JSON.stringify(span.attributes)).not.toContain('secret-value');
    expect(span.status.code).not.toBe(2);
  });

  // express restores req.baseUrl when the error leaves the router, before the app's handler answers.
  it("keeps the mounted template when an error leaves the route's router, and a 5xx is an error", async () => {
    expect((await fetch(`${base}/api/v1/things/77`, { method: 'DELETE' })).status).toBe(500);
    const span = await spanOf('/api/v1/things/77');
    expect(span.name).toBe('DELETE /api/v1/things/:id');
    expect(span.attributes['http.response.status_code']).toBe(500);
    expect(span.attributes['error.type']).toBe('500');
    expect(span.status.code).toBe(2);
  });

  it('names a request no route matched by its method alone', async () => {
    expect((await fetch(`${base}/nowhere/42`)).status).toBe(404);
    const span = await spanOf('/nowhere/42');
    expect(span.name).toBe('GET');
    expect(span.attributes['http.route']).toBeUndefined();
    expect(span.attributes['http.response.status_code']).toBe(404);
  });

  it('is the active span while the request is handled: log lines carry its trace id', async () => {
    await fetch(`${base}/api/v1/things/logged`);
    const span = await spanOf('/api/v1/things/logged');
    const lines = String(logStream.read())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.at(-1)?.['trace_id']).toBe(span.spanContext().traceId);
  });
});
