import { Resolver } from 'node:dns/promises';

/** The TXT values of a name, each record's strings joined; [] when the name has none. */
export type LookupTxt = (name: string) => Promise<string[]>;

/** A lookup that failed for another reason than "no such record" (timeout, refused, SERVFAIL). */
export class DnsLookupError extends Error {
  override readonly name = 'DnsLookupError';
  constructor(readonly code: string) {
    super(`the DNS lookup failed (${code})`);
  }
}

const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA', 'NOTFOUND', 'NODATA']);

/** The longest one TXT lookup may take, whatever the number of servers and tries left. */
const LOOKUP_DEADLINE_MS = 6_000;

/**
 * TXT lookups through `servers` (DNS_RESOLVER: ip or ip:port, as node:dns takes them) or the system's
 * resolvers when none are given. Each lookup waits at most 6 s: the resolver alone would back off (3 s,
 * then 6 s) and try every server in turn, ~10 s per server, for a zone whose servers never answer. Each
 * lookup has its own resolver, so ending one at its deadline cancels no other.
 */
export function createTxtLookup(
  servers: readonly string[] = [],
  { deadlineMs = LOOKUP_DEADLINE_MS }: { deadlineMs?: number } = {},
): LookupTxt {
  return async (name) => {
    const resolver = new Resolver({ timeout: 3_000, tries: 2, maxTimeout: 3_000 });
    if (servers.length > 0) resolver.setServers([...servers]);
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      resolver.cancel();
    }, deadlineMs);
    try {
      const records = await resolver.resolveTxt(name);
      return records.map((chunks) => chunks.join(''));
    } catch (error) {
      if (timedOut) throw new DnsLookupError('ETIMEOUT');
      const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      if (NO_RECORD.has(code)) return [];
      throw new DnsLookupError(code);
    } finally {
      clearTimeout(deadline);
    }
  };
}
