/**
 * `node:net`'s isIP in the browser build, for the request schemas' address rules (IP allow and deny
 * lists): 4 for a dotted-quad IPv4 address, 6 for an IPv6 address (the browser's URL parser decides;
 * a zone id such as %eth0 is allowed, as Node allows it), else 0. The control plane checks again with Node's own on every write.
 */
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIP(input: string): 0 | 4 | 6 {
  if (IPV4.test(input)) return 4;
  const zone = input.indexOf('%');
  if (zone === input.length - 1) return 0;
  const address = zone < 0 ? input : input.slice(0, zone);
  if (!address.includes(':') || /[^0-9A-Fa-f:.]/.test(address)) return 0;
  try {
    new URL(`http://[${address}]/`);
    return 6;
  } catch {
    return 0;
  }
}
