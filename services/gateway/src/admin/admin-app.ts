import { createHash, timingSafeEqual } from 'node:crypto';
import { internalListenerHeader } from '@vantageedge/shared/http/internal-listener';
import express, { type Express, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import type { GatewayConfigStore } from '../config/gateway-config-store.js';

export interface Readiness {
  ready: boolean;
  /**
   * Why not (e.g. "snapshots not caught up"), or why a ready replica is degraded (its snapshot bus
   * unreachable: serving the last known config); shown on /readyz.
   */
  reason?: string;
}

/** The replica's view of the snapshot topic (the config plane's), shown on /status. */
export interface SnapshotFeedStatus {
  caughtUp: boolean;
  /** The snapshot bus is unreachable (down, or connected and answering nothing): the last config is served. */
  degraded: boolean;
  lag: number;
  lastError: string | null;
}

export interface AdminAppOptions {
  store: GatewayConfigStore;
  registry: Registry;
  replicaId: string;
  /** Supplied by the config plane (snapshots caught up); ready by default. */
  readiness?: () => Readiness;
  /** Supplied by the config plane: whether the replica is caught up with the snapshot topic or degraded. */
  snapshots?: () => SnapshotFeedStatus;
  /**
   * When set, /status and /metrics require `Authorization: Bearer <adminToken>` (GATEWAY_ADMIN_TOKEN):
   * both name every tenant (ids, hosts, route names and their traffic). The probes stay open.
   */
  adminToken?: string;
}

const BEARER = /^Bearer +(\S+)$/i;
const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Requires the bearer token. Both sides are hashed first so the comparison is constant-time whatever
 * the lengths (timingSafeEqual needs equal lengths, and a length check would leak the token's).
 */
function requireBearer(token: string): RequestHandler {
  const expected = digest(token);
  return (req, res, next) => {
    const presented = BEARER.exec(req.get('authorization') ?? '')?.[1];
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return next();
    res
      .status(401)
      .set('www-authenticate', 'Bearer realm="vantageedge-admin"')
      .json({
        error: {
          code: 'unauthorized',
          message: 'this endpoint needs the admin token (Authorization: Bearer …)',
          details: [{ field: 'authorization', issue: presented === undefined ? 'missing' : 'invalid' }],
        },
      });
  };
}

/**
 * The admin listener (GATEWAY_ADMIN_PORT, bound to GATEWAY_ADMIN_HOST): liveness, readiness, status
 * and Prometheus metrics. It is a separate server, so none of this is reachable through a tenant's
 * host on the traffic port. Every answer (errors and 404s too) is marked internal
 * (x-vantageedge-internal): no gateway relays it, so a tenant whose origin names this listener — of
 * this replica or of a peer — gets 502, never /status.
 */
export function createAdminApp(options: AdminAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  const [markName, markValue] = internalListenerHeader('gateway-admin');
  app.use((_req, res, next) => {
    res.setHeader(markName, markValue);
    next();
  });
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

  const adminGuard: RequestHandler[] = options.adminToken ? [requireBearer(options.adminToken)] : [];
  app.get('/status', ...adminGuard, (_req, res) => {
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
    const feed = options.snapshots?.();
    const snapshots = feed && {
      caught_up: feed.caughtUp,
      degraded: feed.degraded,
      lag: feed.lag,
      last_error: feed.lastError,
    };
    res.json({
      replica_id: options.replicaId,
      started_at: startedAt,
      ...(snapshots ? { snapshots } : {}),
      tenants,
    });
  });

  app.get('/metrics', ...adminGuard, async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such admin endpoint' } });
  });
  return app;
}
