/**
 * The rules of display text in commands (names, reasons): people read it in the console, the CLI and
 * the audit log.
 */

/**
 * No leading or trailing whitespace. JavaScript's \s spelled out, so every regex engine (this
 * service's, a client's, the API fuzzer's) reads the pattern alike.
 */
const WHITESPACE = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
export const NO_OUTER_WHITESPACE = new RegExp(`^[^${WHITESPACE}](?:[\\s\\S]*[^${WHITESPACE}])?$`);

/**
 * C0 controls (tab and newline too), DEL and C1 controls: a terminal acts on them instead of showing
 * them (ESC and U+009B start escape sequences that can clear the screen or write the clipboard), so
 * names and other display text refuse them. Other Unicode (accents, CJK, emoji, RTL text) is fine.
 */
const CONTROL = '\\u0000-\\u001f\\u007f-\\u009f';
export const CONTROL_CHARACTER = new RegExp(`[${CONTROL}]`);
/**
 * The bidi embedding, override and isolate controls: they reorder how the text around them is shown
 * (`invoice\u202efdp.exe` shows as `invoiceexe.pdf`), so a name could pass itself off as another.
 * Right-to-left text itself needs none of them. Names and other display text refuse them too.
 */
const BIDI = '\\u202a-\\u202e\\u2066-\\u2069';
export const BIDI_CONTROL = new RegExp(`[${BIDI}]`);
/** No CONTROL_CHARACTER and no BIDI_CONTROL, as a pattern for /openapi.json and JSON Schema. */
export const DISPLAY_TEXT_SYNTAX = `^[^${CONTROL}${BIDI}]*$`;
/** NO_OUTER_WHITESPACE, no CONTROL_CHARACTER, no BIDI_CONTROL as one pattern, for /openapi.json and JSON Schema. */
export const DISPLAY_NAME_SYNTAX = `^[^${WHITESPACE}${CONTROL}${BIDI}](?:[^${CONTROL}${BIDI}]*[^${WHITESPACE}${CONTROL}${BIDI}])?$`;
