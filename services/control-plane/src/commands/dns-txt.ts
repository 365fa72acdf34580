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

/**
 * TXT lookups through `servers` (DNS_RESOLVER: ip or ip:port, as node:dns takes them) or the system's
 * resolvers when none are given. Each lookup waits at most ~6 s (3 s per try, 2 tries).
 */
export function createTxtLookup(servers: readonly string[] = []): LookupTxt {
  const resolver = new Resolver({ timeout: 3_000, tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return async (name) => {
    try {
      const records = await resolver.resolveTxt(name);
      return records.map((chunks) => chunks.join(''));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      if (NO_RECORD.has(code)) return [];
      throw new DnsLookupError(code);
    }
  };
}
