import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { buildConnector, errors } from 'undici';
import { type Resolve, resolveAtOnce } from './dns-lookups.js';
import {
  DEFAULT_ORIGIN_TLS,
  failingWithTlsAlerts,
  type OriginTlsSettings,
  serverNameFor,
} from './origin-tls.js';

/** A connection the OriginAddressPolicy refused; the pipeline answers 502 origin_address_blocked. */
export class OriginAddressBlockedError extends Error {
  readonly code = 'ORIGIN_ADDRESS_BLOCKED';

  constructor(reason: string) {
    super(`refused to connect: ${reason}`);
    this.name = 'OriginAddressBlockedError';
  }
}

/**
 * An undici connector that asks the policy before every TCP connection: a literal address is checked
 * as it is, a host name after DNS resolution (inside the socket's own lookup, so the address checked
 * is the address connected to — a name that resolves to a public address when configured and to
 * 127.0.0.1 later gains nothing). Resolved addresses the policy refuses are dropped; when none is left
 * the connection fails with OriginAddressBlockedError.
 *
 * An https connection is verified as the origin's TLS settings say, for the connection's own host (or
 * the configured server name), which is also its SNI: never a name undici took from the request's Host.
 */
export function createGuardedConnector(
  policy: OriginAddressPolicy,
  { timeout, ...options }: buildConnector.BuildOptions = {},
  /** How names are resolved (a tenant's lookups, one at a time: TenantDnsLookups); default: at once. */
  resolve: Resolve = resolveAtOnce,
  tls: OriginTlsSettings = DEFAULT_ORIGIN_TLS,
  /**
   * The tenant's handshake budget around each connection (OriginTlsBudget.connector), inside the
   * connect timeout: a connection waiting for its turn is timed as its connect. Default: none.
   */
  handshakes: (connector: buildConnector.connector, tls: OriginTlsSettings) => buildConnector.connector = (
    connector,
  ) => connector,
): buildConnector.connector {
  // undici times connects on a half-second timer wheel (a 100 ms timeout fires after about 1 s), so
  // the connect timeout is kept here, on a timer of its own.
  const timed = (connector: buildConnector.connector) =>
    withConnectTimeout(handshakes(failingWithTlsAlerts(connector), tls), timeout ?? 0);
  const tlsOptions = { ...options, ...tls.connectOptions };
  const literal = timed(buildConnector(tlsOptions));
  // The policy needs the port (own listeners), which a lookup function is not told: one connector per port.
  const byPort = new Map<number, buildConnector.connector>();
  return (asked, callback) => {
    const connectOptions = asked.protocol === 'https:' ? withOwnServerName(asked, tls) : asked;
    const port = Number(connectOptions.port) || (connectOptions.protocol === 'https:' ? 443 : 80);
    const host = connectOptions.hostname;
    if (isIP(host) !== 0) {
      const refusal = policy.refusal(host, port);
      if (refusal !== undefined) {
        queueMicrotask(() => callback(new OriginAddressBlockedError(refusal), null));
        return;
      }
      literal(connectOptions, callback);
      return;
    }
    let connector = byPort.get(port);
    if (connector === undefined) {
      connector = timed(buildConnector({ ...tlsOptions, lookup: guardedLookup(policy, port, resolve) }));
      byPort.set(port, connector);
    }
    connector(connectOptions, callback);
  };
}

/** The connection's SNI and verified name from its own host (or server_name), whatever undici asked. */
function withOwnServerName(
  { servername: _fromRequest, ...asked }: buildConnector.Options,
  tls: OriginTlsSettings,
): buildConnector.Options {
  const servername = serverNameFor(tls, asked.hostname);
  return servername === undefined ? asked : { ...asked, servername };
}

/**
 * Fails a connect (lookup included) that has not completed after `timeoutMs` with undici's own
 * ConnectTimeoutError (UND_ERR_CONNECT_TIMEOUT: a 504 upstream_timeout, a connect_error retry), and
 * destroys its socket. 0: no timeout.
 */
function withConnectTimeout(
  connector: buildConnector.connector,
  timeoutMs: number,
): buildConnector.connector {
  if (timeoutMs <= 0) return connector;
  return (connectOptions, callback) => {
    let pending = true;
    let timer: NodeJS.Timeout | undefined;
    const socket = connector(connectOptions, (error, connected) => {
      if (!pending) {
        connected?.destroy();
        return;
      }
      pending = false;
      clearTimeout(timer);
      if (error) callback(error, null);
      else callback(null, connected!);
    });
    if (!pending) return socket;
    timer = setTimeout(() => {
      if (!pending) return;
      pending = false;
      const attempted = `${connectOptions.hostname}:${connectOptions.port}`;
      const error = new errors.ConnectTimeoutError(
        `Connect Timeout Error (attempted address: ${attempted}, timeout: ${timeoutMs}ms)`,
      );
      (socket as { destroy?: (error?: Error) => void } | undefined)?.destroy?.(error);
      callback(error, null);
    }, timeoutMs);
    return socket;
  };
}

function guardedLookup(policy: OriginAddressPolicy, port: number, resolve: Resolve): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options as LookupOptions, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      let firstRefusal: string | undefined;
      const allowed = addresses.filter((entry) => {
        const refusal = policy.refusal(entry.address, port);
        firstRefusal ??= refusal;
        return refusal === undefined;
      });
      const first = allowed[0];
      if (first === undefined) {
        callback(
          new OriginAddressBlockedError(`${hostname} resolves to ${firstRefusal ?? 'no address'}`),
          '',
          0,
        );
        return;
      }
      if (options.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}
