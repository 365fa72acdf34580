import { closingQuote } from './string-end.js';

/** A member name's place in a JSON value: object member names and array indexes, outermost first. */
export type JsonPath = Array<string | number>;

const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** An object or array being read. */
interface Frame {
  /** The names of an object's members so far; null for an array. */
  readonly names: string[] | null;
  /** The same names, once there are more than a few to look through. */
  nameSet: Set<string> | null;
  /** An object's member being read: the last name seen. */
  name: string;
  /** An array's element being read. */
  index: number;
  /** Whether the next string is a member name (after `{` or `,`) rather than a value. */
  expectsName: boolean;
}

/** Names an object looks through one by one: most have a few, and a list is cheaper than a Set. */
const LISTED_NAMES = 16;

/** Whether the object already has a member of this name; adds the name if not. */
function named(object: Frame, name: string): boolean {
  const names = object.names!;
  if (object.nameSet !== null) {
    if (object.nameSet.has(name)) return true;
    object.nameSet.add(name);
    return false;
  }
  for (let index = 0; index < names.length; index++) if (names[index] === name) return true;
  names.push(name);
  if (names.length > LISTED_NAMES) object.nameSet = new Set(names);
  return false;
}

/** A member name as JSON.parse reads it: `"\u0061"` is `a`. */
function unescapedName(raw: string): string {
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

function pathTo(frames: readonly Frame[], name: string): JsonPath {
  const path: JsonPath = frames
    .slice(0, -1)
    .map((frame) => (frame.names === null ? frame.index : frame.name));
  path.push(name);
  return path;
}

/**
 * The path of each object member whose name an earlier member of the same object already has
 * (compared as JSON.parse reads names, escapes undone), e.g. `["routes", 0, "cors", "allow_origins"]`,
 * in document order, at most `max` of them. JSON.parse keeps the last of the repeated members silently,
 * while a reviewer, a policy tool or a log may read the first: I-JSON (RFC 7493 §2.3) forbids them.
 * One pass over the text, string contents skipped with indexOf, no recursion; meant for text JSON.parse
 * accepted (for any other it answers something, without throwing).
 */
export function repeatedMemberNames(text: string, max = Number.POSITIVE_INFINITY): JsonPath[] {
  const found: JsonPath[] = [];
  const frames: Frame[] = [];
  let top: Frame | undefined;
  for (let index = 0; index < text.length; index++) {
    let code = text.charCodeAt(index);
    // Indentation of pretty-printed JSON, skipped in a loop tighter than the switch.
    while (code === SPACE) code = text.charCodeAt(++index);
    switch (code) {
      case QUOTE: {
        const end = closingQuote(text, index + 1);
        if (end === -1) return found;
        if (top?.expectsName === true) {
          const name = unescapedName(text.slice(index + 1, end));
          if (named(top, name)) {
            found.push(pathTo(frames, name));
            if (found.length >= max) return found;
          }
          top.name = name;
          top.expectsName = false;
        }
        index = end;
        break;
      }
      case OPEN_BRACE:
        top = { names: [], nameSet: null, name: '', index: 0, expectsName: true };
        frames.push(top);
        break;
      case OPEN_BRACKET:
        top = { names: null, nameSet: null, name: '', index: 0, expectsName: false };
        frames.push(top);
        break;
      case CLOSE_BRACE:
      case CLOSE_BRACKET:
        if (frames.pop() === undefined) return found;
        top = frames.at(-1);
        break;
      case COMMA:
        if (top === undefined) break;
        if (top.names === null) top.index++;
        else top.expectsName = true;
    }
  }
  return found;
}

/** The first of repeatedMemberNames: the path of the first member named twice in its object. */
export function repeatedMemberName(text: string): JsonPath | undefined {
  return repeatedMemberNames(text, 1)[0];
}
