import { isLoopbackHost } from '@vantageedge/shared/net/loopback-host';
import { CliError, EXIT } from './exit-codes.js';

/**
 * The admin API URL a token may be sent to (`login --url`, $VANTAGEEDGE_URL, a saved profile): an
 * http(s) URL without a user name or password, and over plain http only to this machine, unless
 * $VANTAGEEDGE_ALLOW_PLAIN_HTTP says the network on the way is trusted.
 */

/** The URL as it may be printed: what precedes an @ may be a password. */
export function shownUrl(url: string): string {
  return url.includes('@') ? '(not shown: it holds an @)' : url;
}

export function checkAdminApiUrl(url: string, { allowPlainHttp }: { allowPlainHttp: boolean }): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(EXIT.usage, `the admin API URL ${shownUrl(url)} is not a URL`);
  }
  // fetch refuses such a URL, with an error quoting it: the password would be printed.
  if (parsed.username !== '' || parsed.password !== '') {
    throw new CliError(
      EXIT.usage,
      'the admin API URL holds a user name or password, which the CLI never sends (the token is its credential); give the URL without them (it is not shown here)',
    );
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new CliError(EXIT.usage, `the admin API URL ${url} is not an http(s) URL`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (parsed.protocol === 'http:' && !allowPlainHttp && !isLoopbackHost(host)) {
    throw new CliError(
      EXIT.usage,
      `the admin API URL ${url} is plain http to another machine: the token would cross the network readable by anyone on the way. Use https, or set $VANTAGEEDGE_ALLOW_PLAIN_HTTP=1 where that network is trusted; nothing was sent`,
    );
  }
  return parsed;
}

/** $VANTAGEEDGE_ALLOW_PLAIN_HTTP: 1 or true. */
export function plainHttpAllowed(env: NodeJS.ProcessEnv): boolean {
  return ['1', 'true'].includes((env['VANTAGEEDGE_ALLOW_PLAIN_HTTP'] ?? '').trim().toLowerCase());
}
