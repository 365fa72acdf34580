import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import type { GatewayConfigStore } from '../config/gateway-config-store.js';

export interface Readiness {
  ready: boolean;
  /** Why not (e.g. "snapshots not caught up"); shown on /readyz. */
  reason?: string;
}

export interface AdminAppOptions {
  store: GatewayConfigStore;
  registry: Registry;
  replicaId: string;
  /** Supplied by the config plane (snapshots caught up); ready by default. */
  readiness?: () => Readiness;
}

/**
 * The admin listener (GATEWAY_ADMIN_PORT): liveness, readiness, status and Prometheus metrics. It is
 * a separate server, so none of this is reachable through a tenant's host on the traffic port.
 */
export function createAdminApp(options: AdminAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  const startedAt = new Date().toISOString();

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    const readiness = options.readiness?.() ?? { ready: true };
    res.status(readiness.ready ? 200 : 503).json({
      status: readiness.ready ? 'ready' : 'not_ready',
      ...(readiness.reason ? { reason: readiness.reason } : {}),
    });
  });

  app.get('/status', (_req, res) => {
    const tenants = [...options.store.appliedVersions()].map(([tenantId, version]) => {
      const tenant = options.store.get(tenantId);
      return {
        tenant_id: tenantId,
        subdomain: tenant?.subdomain,
        version: version.toString(),
        routes: tenant?.routes.length ?? 0,
        hosts: tenant?.hostNames ?? [],
      };
    });
    res.json({ replica_id: options.replicaId, started_at: startedAt, tenants });
  });

  app.get('/metrics', async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such admin endpoint' } });
  });
  return app;
}
