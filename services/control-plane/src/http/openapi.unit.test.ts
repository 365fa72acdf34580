import type { RedisClient } from '@vantageedge/shared/redis/client';
import { afterAll, describe, expect, it } from 'vitest';
import type { Authorizer } from '../auth/authorize.js';
import { createQueryRouter } from '../queries/router.js';
import { offlineAppDeps } from '../testing/offline-app.js';
import { createControlPlaneApp } from './app.js';
import { buildOpenApiDocument } from './openapi.js';
import { registeredRoutes } from './route-table.js';

/**
 * /openapi.json against the routes the app really registers: every route is documented with an
 * operationId, and the document promises no route that does not exist. Nothing here connects
 * anywhere: routes are registered when the app is built.
 */

const deps = offlineAppDeps();
afterAll(() => deps.close());

// Every optional part switched on, as `make run-control-plane` wires it.
const app = createControlPlaneApp({
  ...deps,
  rollout: { pool: deps.pool, redis: {} as RedisClient },
  cachePurger: { purgeRoute: async () => {}, purgeTenant: async () => {}, purgeTags: async () => {} },
  console: { directory: '/nonexistent', clerkPublishableKey: undefined },
  queryRouter: (authorizer: Authorizer) =>
    createQueryRouter({ pool: deps.pool, authorizer, eventStore: deps.store }),
});

const document = buildOpenApiDocument() as {
  paths: Record<
    string,
    Record<
      string,
      { operationId?: string; parameters?: Array<{ name: string }>; responses: Record<string, unknown> }
    >
  >;
};
const documented = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, operation })),
);
const registered = registeredRoutes(app).map(
  ({ method, path }) => `${method} ${path.replace(/:([A-Za-z_]+)/g, '{$1}')}`,
);

describe('the OpenAPI document and the routes', () => {
  it('documents every registered route, and nothing else', () => {
    expect(registered.length).toBeGreaterThan(30);
    expect(new Set(documented.map((d) => d.key))).toEqual(new Set(registered));
  });

  it('gives every operation a unique operationId', () => {
    const ids = documented.map((d) => d.operation.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents the answers of the headers each operation takes', () => {
    for (const { key, operation } of documented) {
      const parameters = new Set((operation.parameters ?? []).map((p) => p.name));
      const statuses = Object.keys(operation.responses);
      if (parameters.has('If-Match')) expect(statuses, key).toEqual(expect.arrayContaining(['400', '412']));
      if (parameters.has('Idempotency-Key'))
        expect(statuses, key).toEqual(expect.arrayContaining(['400', '409', '422']));
      if (parameters.has('X-Min-Position'))
        expect(statuses, key).toEqual(expect.arrayContaining(['400', '503']));
      if (parameters.has('wait_for_rollout'))
        expect(statuses, key).toEqual(expect.arrayContaining(['202', '400']));
    }
  });

  it('documents 503 store_unavailable on every /api/v1 operation', () => {
    for (const { key, operation } of documented) {
      if (!key.split(' ')[1]?.startsWith('/api/v1/')) continue;
      const unavailable = operation.responses['503'] as { description?: string } | undefined;
      expect(unavailable?.description, key).toContain('store_unavailable');
    }
  });

  it('documents 429 admin_rate_limited with Retry-After on every /api/v1 operation, and nowhere else', () => {
    for (const { key, operation } of documented) {
      const limited = operation.responses['429'] as { headers?: Record<string, unknown> } | undefined;
      if (key.split(' ')[1]?.startsWith('/api/v1/')) {
        expect(limited?.headers, key).toHaveProperty('Retry-After');
      } else {
        expect(limited, key).toBeUndefined();
      }
    }
  });
});
