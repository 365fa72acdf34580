import { isIPv6 } from 'node:net';
import { SettingsError } from './load-settings.js';

/** One listener a service opens, with the settings that choose its address. */
export interface ListenerSetting {
  readonly host: string;
  readonly port: number;
  /** The port's environment variable, named when it collides. */
  readonly portSetting: string;
}

const EVERY_INTERFACE_V4 = '0.0.0.0';
const EVERY_INTERFACE = new Set(['::', '[::]']);

/**
 * Whether two listeners would ask for the same address, which the second one's listen() refuses
 * (EADDRINUSE) after the first has started: the same port (0 lets the kernel pick, so never) on the
 * same host, or on a host one of them covers (`::` every interface, `0.0.0.0` every IPv4 one).
 */
function sameAddress(a: ListenerSetting, b: ListenerSetting): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  if (a.host === b.host || EVERY_INTERFACE.has(a.host) || EVERY_INTERFACE.has(b.host)) return true;
  return (
    (a.host === EVERY_INTERFACE_V4 && !isIPv6(b.host)) || (b.host === EVERY_INTERFACE_V4 && !isIPv6(a.host))
  );
}

/** Throws SettingsError naming the later of two listeners of one process that would share an address. */
export function assertDistinctListeners(listeners: readonly ListenerSetting[]): void {
  listeners.forEach((listener, index) => {
    const earlier = listeners.slice(0, index).find((other) => sameAddress(other, listener));
    if (earlier)
      throw new SettingsError([
        {
          setting: listener.portSetting,
          issue: `must differ from ${earlier.portSetting} (both ${listener.port} on ${listener.host === earlier.host ? listener.host : `${earlier.host} and ${listener.host}`}): two listeners cannot share an address`,
        },
      ]);
  });
}
