import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpOrigin {
  server: Server;
  /** `http://127.0.0.1:<port>`, a target for a snapshot's origin. */
  url: string;
  /** Stops listening and ends its open connections. */
  close(): Promise<void>;
}

/** An HTTP origin on 127.0.0.1 (a free port) that answers with `handler`. */
export async function startHttpOrigin(handler: RequestListener): Promise<HttpOrigin> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
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
