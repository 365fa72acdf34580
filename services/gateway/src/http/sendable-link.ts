import { withoutSpacesAndTabsAtEdges } from './field-value-edges.js';

/** What node's `\s` matches in a Link (JavaScript white space and line terminators). */
const SPACE = /\s/;

function isSpace(char: string): boolean {
  return SPACE.test(char);
}

/** A character of a Link parameter's name or value as node reads them: none of `;`, `"` or white space. */
function isParameterChar(char: string): boolean {
  return char !== ';' && char !== '"' && !isSpace(char);
}

function skipSpaces(value: string, at: number): number {
  let i = at;
  while (i < value.length && isSpace(value[i]!)) i++;
  return i;
}

/**
 * Whether node sends `value` as a Link of a 103 (res.writeEarlyHints): `<uri>` then `; name` or
 * `; name=value` or `; name="value"` parameters, exactly what its check (lib/internal/validators.js,
 * `/^(?:<[^>\r\n]*>)(?:\s*;\s*[^;"\s]+(?:=(")?[^;"\s]*\1)?)*$/`) accepts, read in one pass. That
 * expression tries every way of splitting each `a=b` parameter before it refuses a value, twice as long
 * for each parameter more: an origin's Link of 40 parameters ending in a lone `"` held the event loop of
 * the replica, every tenant's traffic, for days. Given only values this accepts, it matches at once.
 */
export function nodeSendsLink(value: string): boolean {
  if (value[0] !== '<') return false;
  let i = 1;
  while (i < value.length && value[i] !== '>') {
    if (value[i] === '\r' || value[i] === '\n') return false;
    i++;
  }
  if (i === value.length) return false;
  i++;
  while (i < value.length) {
    i = skipSpaces(value, i);
    if (value[i] !== ';') return false;
    i = skipSpaces(value, i + 1);
    const start = i;
    while (i < value.length && isParameterChar(value[i]!)) i++;
    if (i === start) return false;
    if (value[i] !== '"') continue;
    // A quoted value follows `name=` only.
    if (i - start < 2 || value[i - 1] !== '=') return false;
    i++;
    while (i < value.length && isParameterChar(value[i]!)) i++;
    if (value[i] !== '"') return false;
    i++;
  }
  return true;
}

/**
 * The links of one Link line (RFC 8288 §3: a comma-separated list, `<a>; rel=x, <b>; rel=y`), split at
 * the commas outside a `<uri>` and a quoted string, each without the spaces and tabs around it; empty
 * members are left out (RFC 9110 §5.6.1).
 */
export function linksOfLine(line: string): string[] {
  const links: string[] = [];
  let start = 0;
  let inUri = false;
  let inQuotes = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (inQuotes) {
      if (char === '\\') i++;
      else if (char === '"') inQuotes = false;
    } else if (inUri) {
      if (char === '>') inUri = false;
    } else if (char === '<') inUri = true;
    else if (char === '"') inQuotes = true;
    else if (char === ',') {
      addLink(links, line.slice(start, i));
      start = i + 1;
    }
  }
  addLink(links, line.slice(start));
  return links;
}

function addLink(links: string[], member: string): void {
  const link = withoutSpacesAndTabsAtEdges(member);
  if (link !== '') links.push(link);
}
