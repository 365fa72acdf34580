/**
 * Whether an origin's answer is framed with a transfer coding other than `chunked` alone (RFC 9112 §6.1),
 * case aside: `gzip, chunked`, a `gzip` line and a `chunked` one, `chunked, gzip` or `identity` (both
 * framed by the connection's close). The proxy's HTTP/1.1 parser takes off `chunked` only, so the bytes
 * it hands on under any other coding are not the content, and neither client protocol can carry the
 * coding on (HTTP/2 has no Transfer-Encoding; the gateway frames its HTTP/1.1 answers itself). nginx
 * refuses such an answer too, as the gateway refuses such a request.
 */
export function hasUndecodedTransferCoding(value: string | readonly string[] | undefined): boolean {
  if (value === undefined) return false;
  const text = typeof value === 'string' ? value : value.join(',');
  return text.trim().toLowerCase() !== 'chunked';
}

/** Why an exchange whose answer has such a coding was aborted (502 upstream_error; never stored). */
export class UndecodedTransferCodingError extends Error {
  readonly code = 'GATEWAY_UNDECODED_TRANSFER_CODING';
  constructor(value: string | readonly string[] | undefined) {
    super(`the origin answered with Transfer-Encoding ${JSON.stringify(value)}, not chunked alone`);
  }
}
