import { SettingsError } from '../settings/load-settings.js';

/** The problems `parse` refuses its settings with; fails when it refuses none. */
export function problemsOf(parse: () => unknown): Array<{ setting: string; issue: string }> {
  try {
    parse();
  } catch (error) {
    if (error instanceof SettingsError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a SettingsError');
}
