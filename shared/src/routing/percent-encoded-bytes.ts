/**
 * One character of a request's head as its percent-encoded bytes. node reads a head as Latin-1, one
 * character per byte (an HTTP/2 `:path` may carry raw UTF-8), so such a character is encoded as the byte
 * it came as and the origin or client gets the bytes that were sent; a character past Latin-1 (text an
 * admin typed, as explain takes it) as its UTF-8 bytes.
 */
export function percentEncodedBytes(character: string): string {
  const code = character.charCodeAt(0);
  const bytes = code <= 0xff ? [code] : Buffer.from(character, 'utf8');
  let out = '';
  for (const byte of bytes) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}
