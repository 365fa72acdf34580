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
