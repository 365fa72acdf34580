import { type LookupAddress, type LookupOptions, lookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { buildConnector } from 'undici';

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
 */
export function createGuardedConnector(
  policy: OriginAddressPolicy,
  options: buildConnector.BuildOptions = {},
): buildConnector.connector {
  const literal = buildConnector(options);
  // The policy needs the port (own listeners), which a lookup function is not told: one connector per port.
  const byPort = new Map<number, buildConnector.connector>();
  return (connectOptions, callback) => {
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
      connector = buildConnector({ ...options, lookup: guardedLookup(policy, port) });
      byPort.set(port, connector);
    }
    connector(connectOptions, callback);
  };
}

function guardedLookup(policy: OriginAddressPolicy, port: number): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...(options as LookupOptions), all: true }, (error, addresses: LookupAddress[]) => {
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
