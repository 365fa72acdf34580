import { describe, expect, it } from 'vitest';
import { LOCAL_DEFAULTS, port, postgresUrl } from './common-settings.js';
import { parseSettings, SettingsError } from './load-settings.js';

const shape = { DATABASE_URL: postgresUrl, CONTROL_PLANE_PORT: port.default(8080) };

describe('parseSettings', () => {
  it('applies defaults and coerces numbers', () => {
    expect(parseSettings(shape, { DATABASE_URL: LOCAL_DEFAULTS.DATABASE_URL })).toEqual({
      DATABASE_URL: LOCAL_DEFAULTS.DATABASE_URL,
      CONTROL_PLANE_PORT: 8080,
    });
  });

  it('names a malformed setting', () => {
    expect(() => parseSettings(shape, { DATABASE_URL: 'mysql://nope' })).toThrowError(
      /DATABASE_URL: must be a postgres/,
    );
  });

  it('names a missing setting, treating empty as unset', () => {
    try {
      parseSettings(shape, { DATABASE_URL: '', CONTROL_PLANE_PORT: '70000' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SettingsError);
      const problems = (error as SettingsError).problems;
      expect(problems.map((p) => p.setting).sort()).toEqual(['CONTROL_PLANE_PORT', 'DATABASE_URL']);
      expect(problems.find((p) => p.setting === 'DATABASE_URL')?.issue).toBe('is required');
    }
  });
});
