import http from 'node:http';
import type { Registry } from 'prom-client';
import { limitIdleKeepAlive, TIMEOUT_CHECK_INTERVAL_MS } from '../http/idle-keep-alive.js';
import { type InternalService, internalListenerHeader } from '../http/internal-listener.js';
import { requestsInTurn } from '../http/one-request-at-a-time.js';
import { limitSendTime } from '../http/send-timeout.js';

/**
 * Scrapes and healthchecks send a short GET: a client trickling its head or idling on a keep-alive
 * connection is cut in seconds, not node's minute (its default checks only every 30 s).
 */
const TIMEOUTS = { headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000 };

/** A scraper that takes none of an answer this long loses its connection (an exposition is read at once). */
const SEND_TIMEOUT_MS = 10_000;

/**
 * A node:http server for scrapes and probes (a service's metrics listener, the gateway's admin listener)
 * with the timeouts above, and idle keep-alive connections cut after the keep-alive timeout. A
 * connection's pipelined requests run one after another: node hands over every request one read parses,
 * and each GET /metrics renders the whole registry (one write of hundreds of them rendered it hundreds
 * of times at once, each answer waiting for a client that might never read).
 */
export function createScrapeListener(handler: http.RequestListener): http.Server {
  const server = http.createServer(
    {
      headersTimeout: TIMEOUTS.headersTimeoutMs,
      requestTimeout: TIMEOUTS.requestTimeoutMs,
      keepAliveTimeout: TIMEOUTS.keepAliveTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    requestsInTurn()(handler),
  );
  limitIdleKeepAlive(server, TIMEOUTS);
  limitSendTime([server], SEND_TIMEOUT_MS);
  return server;
}

export interface MetricsServer {
  /** The bound port (useful when started on port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A service's metrics listener, apart from anything tenants reach: Prometheus `/metrics` and a liveness
 * `/healthz` (for a projector, its only HTTP surface and what container healthchecks probe; for the
 * control plane, what keeps its metrics off the admin API). Every answer is marked internal
 * (x-vantageedge-internal): a gateway never relays it to a tenant.
 */
export async function startMetricsServer(options: {
  registry: Registry;
  host: string;
  port: number;
  /** Which service answers (the internal mark's value). */
  service: InternalService;
}): Promise<MetricsServer> {
  const { registry } = options;
  const [markName, markValue] = internalListenerHeader(options.service);
  const server = createScrapeListener((req, res) => {
    res.setHeader(markName, markValue);
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
