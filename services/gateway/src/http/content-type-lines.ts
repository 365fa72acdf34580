import { MIMEType } from 'node:util';

/**
 * The media type a browser reads of a Content-Type sent on several lines (Fetch's "extract a MIME type"):
 * the lines joined with ", " and split again at the commas outside quoted strings, the last value that is
 * a media type taken (but for the wildcard type), with the charset of an earlier value of the same type
 * when it has none; as serialised by the MIME Sniffing standard. undefined when no value is a media type
 * (a browser then reads none).
 */
export function contentTypeBrowsersRead(lines: readonly string[]): string | undefined {
  let chosen: MIMEType | undefined;
  let essence: string | undefined;
  let charset: string | null = null;
  for (const value of splitFieldValues(lines.join(', '))) {
    const type = parsedMimeType(value);
    if (type === undefined || type.essence === '*/*') continue;
    chosen = type;
    if (type.essence !== essence) {
      charset = type.params.get('charset');
      essence = type.essence;
    } else if (!type.params.has('charset') && charset !== null) {
      type.params.set('charset', charset);
    }
  }
  return chosen?.toString();
}

function parsedMimeType(value: string): MIMEType | undefined {
  try {
    return new MIMEType(value);
  } catch {
    return undefined;
  }
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
    values.push(value.replace(/^[\t ]+|[\t ]+$/g, ''));
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
