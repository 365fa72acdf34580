/** What GATEWAY_TRUST_PROXY=true (deprecated) stands for: private and loopback ranges. */
export const PRIVATE_PROXY_RANGES: readonly string[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '127.0.0.0/8',
  '::1/128',
  'fc00::/7',
];

/**
 * The trusted proxy ranges the settings ask for, and a warning for the deprecated boolean:
 * GATEWAY_TRUSTED_PROXIES wins; GATEWAY_TRUST_PROXY=true alone means the private ranges.
 */
export function trustedProxiesFromSettings(settings: {
  GATEWAY_TRUSTED_PROXIES: readonly string[];
  GATEWAY_TRUST_PROXY?: boolean | undefined;
}): { ranges: readonly string[]; warning: string | undefined } {
  if (settings.GATEWAY_TRUST_PROXY !== true)
    return { ranges: settings.GATEWAY_TRUSTED_PROXIES, warning: undefined };
  if (settings.GATEWAY_TRUSTED_PROXIES.length > 0) {
    return {
      ranges: settings.GATEWAY_TRUSTED_PROXIES,
      warning: 'GATEWAY_TRUST_PROXY is deprecated and ignored: GATEWAY_TRUSTED_PROXIES is set; remove it',
    };
  }
  return {
    ranges: PRIVATE_PROXY_RANGES,
    warning: `GATEWAY_TRUST_PROXY is deprecated: trusting proxies in ${PRIVATE_PROXY_RANGES.join(',')}; set GATEWAY_TRUSTED_PROXIES to your load balancers' addresses instead`,
  };
}
