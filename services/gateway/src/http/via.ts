import { type HeaderValue, headerList } from '@vantageedge/shared/http/header-values';

/**
 * Via (RFC 9110 §7.6.3): a gateway sends one in each request it forwards, its entry (the protocol the
 * client spoke, then its pseudonym) after those of the proxies in front. Answers to clients carry none:
 * the RFC leaves them to the gateway, and an entry would tell every client what serves it.
 * The entries are made once, one per protocol version a client can speak.
 */
export interface ViaEntries {
  readonly http10: string;
  readonly http11: string;
  readonly http2: string;
}

/** The entries for `pseudonym` (a token, settings.ts); undefined for `off`, which sends none. */
export function viaEntries(pseudonym: string): ViaEntries | undefined {
  if (pseudonym === 'off') return undefined;
  return { http10: `1.0 ${pseudonym}`, http11: `1.1 ${pseudonym}`, http2: `2 ${pseudonym}` };
}

/** The Via the origin gets: the client's entries as sent, then the gateway's for `httpVersion` (node's). */
export function withViaEntry(prior: HeaderValue, httpVersion: string, entries: ViaEntries): string {
  const own = httpVersion === '1.1' ? entries.http11 : httpVersion === '2.0' ? entries.http2 : entries.http10;
  const before = headerList(prior);
  return before === undefined ? own : `${before}, ${own}`;
}
