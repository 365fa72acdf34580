import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface HttpOrigin {
  server: Server;
  /** `http://127.0.0.1:<port>` (`https://` with a certificate), a target for a snapshot's origin. */
  url: string;
  /** Stops listening and ends its open connections. */
  close(): Promise<void>;
}

/** The certificate (chain) and key an https origin presents. */
export interface OriginCertificate {
  readonly chainPem: string;
  readonly privateKeyPem: string;
}

/** An HTTP origin on 127.0.0.1 (a free port) that answers with `handler`; https with `certificate`. */
export async function startHttpOrigin(
  handler: RequestListener,
  certificate?: OriginCertificate,
): Promise<HttpOrigin> {
  const server: Server =
    certificate === undefined
      ? createServer(handler)
      : createHttpsServer({ cert: certificate.chainPem, key: certificate.privateKeyPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = certificate === undefined ? 'http' : 'https';
  return {
    server,
    url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An HTTP origin that reads every request and answers each the same: `status`, `body`. */
export function startFixedOrigin(status = 200, body = 'ok'): Promise<HttpOrigin> {
  return startHttpOrigin((req, res) => {
    req.resume();
    res.writeHead(status).end(body);
  });
}

/** An HTTP origin that records how it read each request's body, by path (the first one per path). */
export interface BodyEndingOrigin extends HttpOrigin {
  /** Paths of the requests whose head reached it. */
  received: Set<string>;
  /** `complete`: read to its end (and answered 200); `aborted`: cut off first (reset, closed). */
  endings: Map<string, { ending: 'complete' | 'aborted'; bytes: number }>;
}

/**
 * For the tests of what an origin gets of a request body cut short (at a limit, by its client): whether
 * it could take it for a whole one, which it would act on.
 */
export async function startBodyEndingOrigin(): Promise<BodyEndingOrigin> {
  const received = new Set<string>();
  const endings: BodyEndingOrigin['endings'] = new Map();
  const origin = await startHttpOrigin((req, res) => {
    const path = req.url ?? '/';
    received.add(path);
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      if (!endings.has(path)) endings.set(path, { ending: 'complete', bytes });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`read ${bytes}`);
    });
    req.on('close', () => {
      if (!endings.has(path)) endings.set(path, { ending: 'aborted', bytes });
    });
  });
  return { ...origin, received, endings };
}
