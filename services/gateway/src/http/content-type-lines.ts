import { withoutEdges, withoutSpacesAndTabsAtEdges, withoutTrailing } from './field-value-edges.js';

/**
 * The media type a browser reads of a Content-Type sent on several lines (Fetch's "extract a MIME type"):
 * the lines joined with ", " and split again at the commas outside quoted strings, the last value that is
 * a media type taken (but for the wildcard type), with the charset of an earlier value of the same type
 * when it has none; as serialised by the MIME Sniffing standard. undefined when no value is a media type
 * (a browser then reads none).
 *
 * The lines are the origin's, up to a head's size: every step is linear in them. (util.MIMEType, which
 * parses as the standard does, trims with /[\r\n\t ]*$/ and took a second for a value with a run of
 * spaces inside.)
 */
export function contentTypeBrowsersRead(lines: readonly string[]): string | undefined {
  let chosen: MediaType | undefined;
  let essence: string | undefined;
  let charset: string | undefined;
  for (const value of splitFieldValues(lines.join(', '))) {
    const type = parsedMediaType(value);
    if (type === undefined || type.essence === '*/*') continue;
    chosen = type;
    if (type.essence !== essence) {
      charset = type.params.get('charset');
      essence = type.essence;
    } else if (!type.params.has('charset') && charset !== undefined) {
      type.params.set('charset', charset);
    }
  }
  return chosen === undefined ? undefined : serialized(chosen);
}

interface MediaType {
  /** `type/subtype` in lower case. */
  essence: string;
  /** Parameter names in lower case, in the order given; the first of a name counts. */
  params: Map<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const QUOTED_STRING_TOKENS = /^[\t\x20-\x7e\x80-\xff]*$/;

/** MIME Sniffing's "parse a MIME type": undefined for its failure. */
function parsedMediaType(input: string): MediaType | undefined {
  const text = withoutEdges(input, isHttpWhitespace);
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const type = text.slice(0, slash);
  const subtypeEnd = endOfPart(text, slash + 1);
  const subtype = withoutTrailing(text.slice(slash + 1, subtypeEnd), isHttpWhitespace);
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return undefined;
  const params = new Map<string, string>();
  let position = subtypeEnd;
  while (position < text.length) {
    position += 1; // the ;
    while (position < text.length && isHttpWhitespace(text.charCodeAt(position))) position += 1;
    let nameEnd = position;
    while (nameEnd < text.length && text[nameEnd] !== ';' && text[nameEnd] !== '=') nameEnd += 1;
    const name = text.slice(position, nameEnd);
    position = nameEnd;
    if (position < text.length) {
      if (text[position] === ';') continue;
      position += 1; // the =
    }
    if (position >= text.length) break;
    let value: string;
    if (text[position] === '"') {
      const quoted = quotedString(text, position);
      value = quoted.value;
      position = endOfPart(text, quoted.end);
    } else {
      const valueEnd = endOfPart(text, position);
      value = withoutTrailing(text.slice(position, valueEnd), isHttpWhitespace);
      position = valueEnd;
      if (value === '') continue;
    }
    // A token is ASCII: lower-cased only once known to be one, as the standard's ASCII lowercase does.
    const lowerName = name.toLowerCase();
    if (TOKEN.test(name) && QUOTED_STRING_TOKENS.test(value) && !params.has(lowerName)) {
      params.set(lowerName, value);
    }
  }
  return { essence: `${type}/${subtype}`.toLowerCase(), params };
}

/** MIME Sniffing's "serialize a MIME type". */
function serialized({ essence, params }: MediaType): string {
  let text = essence;
  for (const [name, value] of params) {
    const shown = value !== '' && TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
    text += `;${name}=${shown}`;
  }
  return text;
}

/** Fetch's "collect an HTTP quoted string" from the `"` at `start`, its value extracted. */
function quotedString(text: string, start: number): { value: string; end: number } {
  let value = '';
  let position = start + 1;
  for (;;) {
    let stop = position;
    while (stop < text.length && text[stop] !== '"' && text[stop] !== '\\') stop += 1;
    value += text.slice(position, stop);
    position = stop;
    if (position >= text.length) break;
    const char = text[position];
    position += 1;
    if (char !== '\\') break;
    if (position >= text.length) {
      value += '\\';
      break;
    }
    value += text[position];
    position += 1;
  }
  return { value, end: position };
}

/** Where the part starting at `from` ends: at the next `;`, or the end. */
function endOfPart(text: string, from: number): number {
  const semicolon = text.indexOf(';', from);
  return semicolon < 0 ? text.length : semicolon;
}

function isHttpWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/** Fetch's "get, decode, and split": the values of a field at its commas, but for those in quoted strings. */
function splitFieldValues(input: string): string[] {
  const values: string[] = [];
  let position = 0;
  let value = '';
  for (;;) {
    const plain = /[^",]*/y;
    plain.lastIndex = position;
    value += plain.exec(input)?.[0] ?? '';
    position = plain.lastIndex;
    if (input[position] === '"') {
      const end = quotedStringEnd(input, position);
      value += input.slice(position, end);
      position = end;
      if (position < input.length) continue;
    }
    values.push(withoutSpacesAndTabsAtEdges(value));
    value = '';
    if (position >= input.length) return values;
    position += 1; // the comma
  }
}

/** Where the HTTP quoted string starting at `start` (a `"`) ends: after its closing quote, or at the end. */
function quotedStringEnd(input: string, start: number): number {
  let position = start + 1;
  while (position < input.length) {
    const char = input[position];
    if (char === '"') return position + 1;
    position += char === '\\' ? 2 : 1;
  }
  return input.length;
}
