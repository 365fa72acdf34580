import http from 'node:http';
import { type Dispatcher, Pool } from 'undici';

/**
 * The floor of a Node reverse proxy: node:http server + undici Pool to the origin (as the gateway's
 * upstream sets use), no gateway code at all — no tenant lookup, routing, auth, limits, metrics or logs.
 * Measured next to nginx so the gap splits into "Node's cost" and "the gateway's cost".
 *
 * It proxies the way the gateway does: undici's `dispatch` hands each chunk of the origin's body to the
 * client response, pausing the origin when the client is slow. That is the cheapest shape measured here
 * (`pool.stream()` costs about 15% more CPU per request, `pool.request()` + `pipe` more again), so the
 * floor is what the best Node proxy of this shape reaches, not a slower one.
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

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseData']>>[0];

// A response's bytes written in one turn of the event loop go out at its end, with the other responses
// of that turn (as the gateway does: see its GatewayServerResponse).
let turnEnd: Array<() => void> = [];
function atTurnEnd(release: () => void): void {
  if (turnEnd.push(release) > 1) return;
  setImmediate(() => {
    const releases = turnEnd;
    turnEnd = [];
    for (const next of releases) next();
  });
}

const server = http.createServer((req, res) => {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  let controller: Controller | undefined;
  let held = false;
  let endHeld = false;
  const clientGone = () => {
    if (!res.writableEnded) controller?.abort(new Error('the client went away'));
  };
  res.once('close', clientGone);
  pool.dispatch(
    {
      path: req.url ?? '/',
      method: req.method as 'GET',
      headers: withoutHopByHop(req.headers),
      body: hasBody ? req : null,
    },
    {
      onRequestStart(started) {
        controller = started;
      },
      onResponseStart(_controller, statusCode, headers) {
        if (statusCode < 200) return;
        res.writeHead(statusCode, withoutHopByHop(headers));
        res.cork();
        held = true;
        atTurnEnd(() => {
          held = false;
          if (endHeld) res.end();
          else res.uncork();
        });
      },
      onResponseData(paused, chunk) {
        if (!res.write(chunk)) {
          paused.pause();
          res.once('drain', () => paused.resume());
        }
      },
      onResponseEnd() {
        res.off('close', clientGone);
        if (held) endHeld = true;
        else res.end();
      },
      onResponseError() {
        res.off('close', clientGone);
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      },
    },
  );
});
server.keepAliveTimeout = 75_000;
server.listen(Number(process.env['FLOOR_PORT'] ?? 0), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void pool.close().then(() => process.exit(0));
});
