import http from 'node:http';
import { Pool } from 'undici';

/**
 * The floor of a Node reverse proxy: node:http server + undici Pool to the origin (as the gateway's
 * upstream sets use), no gateway code at all — no tenant lookup, routing, auth, limits, metrics or logs.
 * Measured next to nginx so the gap splits into "Node's cost" and "the gateway's cost".
 * Environment: FLOOR_PORT, FLOOR_ORIGIN_URL.
 */
const origin = process.env['FLOOR_ORIGIN_URL'];
if (!origin) throw new Error('FLOOR_ORIGIN_URL is required');
const pool = new Pool(origin, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host']);

const server = http.createServer((req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  }
  pool.request({ path: req.url ?? '/', method: req.method as 'GET', headers, body: req }).then(
    ({ statusCode, headers: upstream, body }) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstream)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      res.writeHead(statusCode, out);
      body.pipe(res);
    },
    () => {
      res.writeHead(502).end();
    },
  );
});
server.keepAliveTimeout = 75_000;
server.listen(Number(process.env['FLOOR_PORT'] ?? 0), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void pool.close().then(() => process.exit(0));
});
