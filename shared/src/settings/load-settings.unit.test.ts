import { describe, expect, it } from 'vitest';
import { z } from 'zod';
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

  it.each([' ', '\t', '\n  '])('refuses a blank value (%j), which a number would read as 0', (blank) => {
    // 0 turns some protections off (a rate limit of 0, a request budget of 0).
    const limits = {
      FAILURES_PER_MINUTE: z.coerce.number().int().min(0).default(30),
      SECRET: z.string().min(1),
    };
    expect(() => parseSettings(limits, { FAILURES_PER_MINUTE: blank, SECRET: 's' })).toThrowError(
      /FAILURES_PER_MINUTE: is blank/,
    );
    expect(() => parseSettings(limits, { SECRET: blank.repeat(32) })).toThrowError(/SECRET: is blank/);
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
