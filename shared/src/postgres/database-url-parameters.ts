/**
 * DATABASE_URL's query parameters as node-postgres reads them (pg-connection-string's parse), a
 * repeated one at its last value: what its connections use, so what the settings check and the TLS
 * warning must read. A URL holding a space or a `%` that starts no escape (a password written with a
 * bare `%`) is re-spelt first with encodeURI, which keeps escapes of two decimal digits and makes every
 * other escape literal text — `sslrootcert=%2Fetc%2Fca.pem` then opens the file `%2Fetc%2Fca.pem`.
 * Undefined when the URL does not parse.
 */
export function postgresUrlParameters(url: string): ReadonlyMap<string, string> | undefined {
  try {
    const spelt = RESPELT.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url;
    return new Map(new URL(spelt).searchParams);
  } catch {
    return undefined;
  }
}

/** pg-connection-string's test for a URL it re-spells. */
const RESPELT = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i;
