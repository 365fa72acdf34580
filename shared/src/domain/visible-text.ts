/**
 * Text that came from a tenant, a client or the admin API, made safe to show a person: the console
 * and the CLI show every character a screen acts on or draws as nothing as a visible `\u202e`-style
 * escape, so one name cannot pass itself off as another.
 */

/**
 * What is escaped: C0 controls (ESC starts CSI/OSC sequences, BEL ends them, CR overwrites a line),
 * DEL, C1 controls (U+009B is CSI on its own), the line and paragraph separators, every bidi control
 * (Unicode's Bidi_Control: the embedding/override/isolate controls and the invisible ALM, LRM and RLM
 * marks; they reorder what is shown), and the other invisible format characters (Unicode's Cf: soft
 * hyphen, zero-width space and joiners, word joiner, invisible operators, BOM, …; beyond the Basic
 * Multilingual Plane the tag characters U+E0001 and U+E0020–E007F, which are drawn as nothing, and the
 * format controls of a few scripts) and the rest of what Unicode calls Default_Ignorable (the Hangul
 * fillers, variation selectors, the combining grapheme joiner, Mongolian variation selectors, Khmer
 * inherent vowels and the code points reserved as ignorable), which make one name look like another:
 * `Acme\u3164` reads as `Acme`. A character class body, for `new RegExp(…, 'u')`.
 */
export const HIDDEN_CHARACTERS =
  '\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u034f\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2' +
  '\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\u3164' +
  '\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff0-\\ufffb' +
  '\\u{110bd}\\u{110cd}\\u{13430}-\\u{1343f}\\u{1bca0}-\\u{1bca3}\\u{1d173}-\\u{1d17a}\\u{e0000}-\\u{e0fff}';
// `u`: a character beyond the BMP is one match (its surrogate pair), not two halves that match nothing.
const HIDDEN = new RegExp(`[${HIDDEN_CHARACTERS}]`, 'gu');
const HIDDEN_BUT_NEWLINE = new RegExp(`(?!\\n)[${HIDDEN_CHARACTERS}]`, 'gu');

/** `\u001b`; a character beyond the BMP as its surrogate pair (`\udb40\udc41`), as JSON and YAML write it. */
function visibleEscape(char: string): string {
  let escaped = '';
  for (let index = 0; index < char.length; index++) {
    escaped += `\\u${char.charCodeAt(index).toString(16).padStart(4, '0')}`;
  }
  return escaped;
}

/**
 * `text` with every HIDDEN_CHARACTERS character as its `\u…` escape. `keepNewlines` leaves `\n` for
 * text laid out in lines. Backslashes are left as they are, so applying it twice changes nothing.
 */
export function withHiddenCharactersShown(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines ? HIDDEN_BUT_NEWLINE : HIDDEN, visibleEscape);
}
