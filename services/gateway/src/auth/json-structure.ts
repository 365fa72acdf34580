import { closingQuote } from '@vantageedge/shared/json/string-end';

export interface JsonStructureBounds {
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
  /**
   * Most tokens other than numbers and literals: strings, `{`, `[`, `,` and `:`. An object member
   * takes about four, an array element two.
   */
  maxTokens: number;
}

/** The characters that make JSON's structure, and the quote that opens a string. */
const STRUCTURE = /["{}[\],:]/g;

/**
 * Why a JSON text is beyond the bounds, judged before anything parses it; undefined when it is within
 * them. JSON.parse costs far more on some shapes than on others of the same length (1 MiB of nested
 * arrays, or of small objects with distinct member names, takes it 0.2–0.5 s against ~15 ms for long
 * strings), and holds the thread while it runs. String contents are skipped, not scanned one character
 * at a time; whether the text is JSON at all is left to JSON.parse.
 */
export function jsonStructureExcess(text: string, bounds: JsonStructureBounds): string | undefined {
  const structure = new RegExp(STRUCTURE);
  let depth = 0;
  let tokens = 0;
  for (let match = structure.exec(text); match !== null; match = structure.exec(text)) {
    switch (match[0]) {
      case '"': {
        const end = closingQuote(text, match.index + 1);
        // Not JSON: JSON.parse refuses it, having read no further than here.
        if (end === -1) return undefined;
        structure.lastIndex = end + 1;
        tokens++;
        break;
      }
      case '{':
      case '[':
        depth++;
        if (depth > bounds.maxDepth) return `nests deeper than ${bounds.maxDepth}`;
        tokens++;
        break;
      case '}':
      case ']':
        depth--;
        // Not JSON either, and refused by JSON.parse at this character.
        if (depth < 0) return undefined;
        break;
      default:
        tokens++;
    }
    if (tokens > bounds.maxTokens) return `holds more than ${bounds.maxTokens} tokens`;
  }
  return undefined;
}
