/**
 * A field value without the spaces and tabs at its edges, as an HTTP/1.1 parser reads it (RFC 9112 §5;
 * not String#trim's, which takes other whitespace too). Found by index, not by /[\t ]+$/, which tries
 * again from each space of a run inside the value: quadratic in an origin's line (16 KiB of spaces held
 * the event loop for most of a second).
 */
export function withoutSpacesAndTabsAtEdges(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isSpaceOrTab(text.charCodeAt(start))) start++;
  while (end > start && isSpaceOrTab(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isSpaceOrTab(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
