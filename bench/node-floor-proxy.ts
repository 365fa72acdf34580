import http from 'node:http';
import type { Writable } from 'node:stream';
import { Pool } from 'undici';

/**
 * The floor of a Node reverse proxy: node:http server + undici Pool to the origin (as the gateway's
 * upstream sets use), no gateway code at all — no tenant lookup, routing, auth, limits, metrics or logs.
 * Measured next to nginx so the gap splits into "Node's cost" and "the gateway's cost".
 *
 * It proxies the way the gateway does: `pool.stream()` writes the origin's body straight into the client
 * response (no intermediate Readable and `pipe`, which costs a quarter to a third more per request), so
 * the floor is what the best Node proxy of this shape reaches, not a slower one.
 * Environment: FLOOR_PORT, FLOOR_ORIGIN_URL.
 */
const origin = process.env['FLOOR_ORIGIN_URL'];
if (!origin) throw new Error('FLOOR_ORIGIN_URL is required');
const pool = new Pool(origin, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host']);

function withoutHopByHop(headers: Record<string, string | string[] | undefined>) {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

const server = http.createServer((req, res) => {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  pool.stream(
    {
      path: req.url ?? '/',
      method: req.method as 'GET',
      headers: withoutHopByHop(req.headers),
      body: hasBody ? req : null,
    },
    ({ statusCode, headers }): Writable => {
      res.writeHead(statusCode, withoutHopByHop(headers));
      return res;
    },
    (error) => {
      if (error === null) return;
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
  );
});
server.keepAliveTimeout = 75_000;
server.listen(Number(process.env['FLOOR_PORT'] ?? 0), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void pool.close().then(() => process.exit(0));
});
