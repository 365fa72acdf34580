import http from 'node:http';
import { internalListenerHeader } from '@vantageedge/shared/http/internal-listener';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  /** The bound port (useful when started on port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A projector's admin listener: Prometheus `/metrics` and a liveness `/healthz`. Projectors have no
 * other HTTP surface, so this is what Prometheus scrapes and what container healthchecks probe. Every
 * answer is marked internal (x-vantageedge-internal): a gateway never relays it to a tenant.
 */
export async function startMetricsServer(options: {
  registry: Registry;
  host: string;
  port: number;
}): Promise<MetricsServer> {
  const { registry } = options;
  const [markName, markValue] = internalListenerHeader('projector');
  const server = http.createServer((req, res) => {
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
