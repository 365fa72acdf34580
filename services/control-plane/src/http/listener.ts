import { createServer, type RequestListener, type Server } from 'node:http';
import { limitIdleKeepAlive, TIMEOUT_CHECK_INTERVAL_MS } from '@vantageedge/shared/http/idle-keep-alive';
import { requestsInTurn } from '@vantageedge/shared/http/one-request-at-a-time';
import { limitSendTime } from '@vantageedge/shared/http/send-timeout';
import { limitConnectionsPerClient } from '@vantageedge/shared/net/client-connection-limit';
import type { ControlPlaneSettings } from '../settings.js';
import { answerClientError } from './client-error-answer.js';
import { holdContinue } from './continue-upload.js';
import { withOriginFormTargets } from './request-target.js';

export interface ControlPlaneListenerOptions {
  host: string;
  port: number;
  /** CONTROL_PLANE_HEADERS_TIMEOUT_MS: a request head not complete in time is answered 408. */
  headersTimeoutMs: number;
  /** CONTROL_PLANE_REQUEST_TIMEOUT_MS: the whole request, body included. */
  requestTimeoutMs: number;
  /** CONTROL_PLANE_KEEP_ALIVE_TIMEOUT_MS: an idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** CONTROL_PLANE_SEND_TIMEOUT_MS: a connection whose client takes none of its answer this long is closed (0: never). */
  sendTimeoutMs?: number;
  /** CONTROL_PLANE_MAX_CONNECTIONS: more are closed on arrival. */
  maxConnections: number;
  /** CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT (0: no limit): more from one address are closed on arrival. */
  maxConnectionsPerClient: number;
  /** CONTROL_PLANE_TRUSTED_PROXIES: load balancers carry many clients' connections, so they are not limited. */
  trustedProxies?: readonly string[];
  /** CONTROL_PLANE_CLIENT_IPV6_PREFIX: the network an IPv6 client is counted by (default: its /64). */
  clientIpv6Prefix?: number;
  /** A connection was closed on arrival by either connection limit. */
  onDrop?: () => void;
}

/** The listener's options as the settings give them (`make run-control-plane` and `make dev` alike). */
export function listenerOptionsFromSettings(
  settings: Pick<
    ControlPlaneSettings,
    | 'CONTROL_PLANE_HOST'
    | 'CONTROL_PLANE_PORT'
    | 'CONTROL_PLANE_HEADERS_TIMEOUT_MS'
    | 'CONTROL_PLANE_REQUEST_TIMEOUT_MS'
    | 'CONTROL_PLANE_KEEP_ALIVE_TIMEOUT_MS'
    | 'CONTROL_PLANE_SEND_TIMEOUT_MS'
    | 'CONTROL_PLANE_MAX_CONNECTIONS'
    | 'CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT'
    | 'CONTROL_PLANE_TRUSTED_PROXIES'
    | 'CONTROL_PLANE_CLIENT_IPV6_PREFIX'
  >,
  onDrop?: () => void,
): ControlPlaneListenerOptions {
  return {
    host: settings.CONTROL_PLANE_HOST,
    port: settings.CONTROL_PLANE_PORT,
    headersTimeoutMs: settings.CONTROL_PLANE_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: settings.CONTROL_PLANE_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: settings.CONTROL_PLANE_KEEP_ALIVE_TIMEOUT_MS,
    sendTimeoutMs: settings.CONTROL_PLANE_SEND_TIMEOUT_MS,
    maxConnections: settings.CONTROL_PLANE_MAX_CONNECTIONS,
    maxConnectionsPerClient: settings.CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT,
    trustedProxies: settings.CONTROL_PLANE_TRUSTED_PROXIES,
    clientIpv6Prefix: settings.CONTROL_PLANE_CLIENT_IPV6_PREFIX,
    ...(onDrop ? { onDrop } : {}),
  };
}

/**
 * The admin API's listener (CONTROL_PLANE_PORT). Every tenant admin, and often anyone on the internet,
 * reaches it before any token is checked: node's defaults let one client hold unbounded connections and
 * trickle each request head for a minute, until no tenant could reach the admin API. A connection's
 * requests run one after another (node hands over every request one read parses: 1,500 pipelined GETs
 * of /docs in one 46 KB write ran at once, each answer a copy waiting for a client that never read, 7 GB;
 * console files opened for answers that never got the socket stayed open after the client left), and a
 * client that takes none of its answer for CONTROL_PLANE_SEND_TIMEOUT_MS loses its connection.
 */
export async function listenControlPlane(
  handler: RequestListener,
  options: ControlPlaneListenerOptions,
): Promise<Server> {
  // Both events that hand over a connection's requests take their turns in the same queues.
  const inTurn = requestsInTurn();
  const forward = withOriginFormTargets(handler);
  const handle = inTurn(forward);
  const server = createServer(
    {
      // The app refuses a request without Host itself, in its error shape (http/request-host.ts).
      requireHostHeader: false,
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, options.headersTimeoutMs),
    },
    handle,
  );
  // No `100 Continue` before authentication: node would invite every client's body before any check.
  server.on(
    'checkContinue',
    inTurn((req, res) => {
      holdContinue(req, res);
      forward(req, res);
    }),
  );
  server.on('clientError', answerClientError);
  server.maxConnections = options.maxConnections;
  limitSendTime([server], options.sendTimeoutMs ?? 0);
  // Blank lines would otherwise keep an idle keep-alive connection open for ever.
  limitIdleKeepAlive(server, {
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    headersTimeoutMs: options.headersTimeoutMs,
  });
  if (options.onDrop) server.on('drop', options.onDrop);
  limitConnectionsPerClient([server], {
    limit: options.maxConnectionsPerClient,
    trustedProxies: options.trustedProxies ?? [],
    ipv6Prefix: options.clientIpv6Prefix,
    ...(options.onDrop ? { onDrop: options.onDrop } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}
