import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { buildConnector } from 'undici';

/**
 * `connector` with `prepare` run on each connection it makes, before undici is handed it; a failed
 * connect passes through as it is. What `connector` returns is returned too: undici's own connectors
 * return the socket, which a connect timeout outside destroys.
 */
export function preparingConnections(
  connector: buildConnector.connector,
  prepare: (socket: Socket | TLSSocket, options: buildConnector.Options) => void,
): buildConnector.connector {
  const connect = connector as (...args: Parameters<buildConnector.connector>) => unknown;
  return (options, callback) =>
    connect(options, (error, socket) => {
      if (error !== null) {
        callback(error, null);
        return;
      }
      prepare(socket, options);
      callback(null, socket);
    }) as undefined;
}
