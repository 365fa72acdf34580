import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The text of the object literal whose `{` is at `open`, braces balanced. */
function objectLiteral(text: string, open: number): string {
  let depth = 0;
  for (let index = open; index < text.length; index += 1) {
    if (text[index] === '{') depth += 1;
    else if (text[index] === '}' && --depth === 0) return text.slice(open, index + 1);
  }
  return text.slice(open);
}

/** A settings shape: `const xSettings = {`, or the object given to loadSettingsOrExit / parseSettings. */
const SHAPE_START =
  /(?:const \w*[sS]ettings(?::[^=]+)?\s*=\s*|loadSettingsOrExit\(\s*'[^']*',\s*|parseSettings\(\s*)\{/g;
const SETTING_KEY = /^\s*([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+):/gm;
/** `env['NAME']`, `process.env['NAME']`, and commander's `.env('NAME')`. */
const ENVIRONMENT_READ = /\benv(?:\[|\()['"]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"][\])]/g;

/**
 * Every setting `files` (relative to `root`) read, with the files that read it: the keys of their
 * settings shapes and the environment variables they read by name.
 */
export function settingsReadBy(root: string, files: readonly string[]): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  const add = (name: string, file: string) => settings.set(name, [...(settings.get(name) ?? []), file]);
  for (const file of files) {
    const text = readFileSync(path.join(root, file), 'utf8');
    for (const shape of text.matchAll(SHAPE_START)) {
      const literal = objectLiteral(text, shape.index + shape[0].length - 1);
      for (const key of literal.matchAll(SETTING_KEY)) add(key[1] ?? '', file);
    }
    for (const reading of text.matchAll(ENVIRONMENT_READ)) add(reading[1] ?? '', file);
  }
  return settings;
}
