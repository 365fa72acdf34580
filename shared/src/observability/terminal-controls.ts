/**
 * DEL and the C1 controls (U+007F–U+009F: CSI, OSC, …), which JSON.stringify writes as they are. A
 * header value may hold any byte 0x80–0xFF, read as the character of that code point; a terminal showing
 * a log (`tail -f`, `kubectl logs`) acts on U+009B as on ESC [ and on U+009D as on ESC ].
 */
const TERMINAL_CONTROLS = /[\u007f-\u009f]/g;

function escapedControl(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * JSON text with those controls escaped as `\u00XX` too: still the same JSON (each string parses back as
 * it was), and a line shown as it is holds no control character.
 */
export function withTerminalControlsEscaped(json: string): string {
  return json.replace(TERMINAL_CONTROLS, escapedControl);
}
