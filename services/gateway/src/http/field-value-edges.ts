/**
 * A field value without the spaces and tabs at its edges, as an HTTP/1.1 parser reads it (RFC 9112 §5;
 * not String#trim's, which takes other whitespace too). Found by index, not by /[\t ]+$/, which tries
 * again from each space of a run inside the value: quadratic in an origin's line (16 KiB of spaces held
 * the event loop for most of a second).
 */
export function withoutSpacesAndTabsAtEdges(text: string): string {
  return withoutEdges(text, isSpaceOrTab);
}

/** `text` without the characters `isWhitespace` names at its start and end, found by index. */
export function withoutEdges(text: string, isWhitespace: (code: number) => boolean): string {
  let start = 0;
  while (start < text.length && isWhitespace(text.charCodeAt(start))) start += 1;
  return withoutTrailing(start === 0 ? text : text.slice(start), isWhitespace);
}

/** `text` without the characters `isWhitespace` names at its end. */
export function withoutTrailing(text: string, isWhitespace: (code: number) => boolean): string {
  let end = text.length;
  while (end > 0 && isWhitespace(text.charCodeAt(end - 1))) end -= 1;
  return end === text.length ? text : text.slice(0, end);
}

function isSpaceOrTab(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
