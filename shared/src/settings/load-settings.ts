import { z } from 'zod';

/** A setting that is missing or malformed, reported by its environment variable name. */
export class SettingsError extends Error {
  constructor(readonly problems: ReadonlyArray<{ setting: string; issue: string }>) {
    super(problems.map((p) => `${p.setting}: ${p.issue}`).join('; '));
    this.name = 'SettingsError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Validates the environment against a zod object whose keys are the environment variable names.
 * Throws SettingsError naming every bad setting; never returns a half-valid config.
 */
export function parseSettings<Shape extends z.ZodRawShape>(
  shape: Shape,
  env: Env = process.env,
): z.infer<z.ZodObject<Shape>> {
  const schema = z.object(shape);
  // Empty strings mean "unset", as in most .env tooling. A blank one is a mistake: a number would
  // read it as 0, which turns some protections off.
  const input: Env = {};
  const blank: Array<{ setting: string; issue: string }> = [];
  for (const key of Object.keys(shape)) {
    const value = env[key];
    if (value === undefined || value === '') continue;
    if (value.trim() === '') blank.push({ setting: key, issue: 'is blank (leave it empty to unset it)' });
    else input[key] = value;
  }
  if (blank.length > 0) throw new SettingsError(blank);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new SettingsError(
    result.error.issues.map((issue) => ({
      setting: String(issue.path[0] ?? '(root)'),
      issue:
        issue.code === 'invalid_type' && input[String(issue.path[0])] === undefined
          ? 'is required'
          : issue.message,
    })),
  );
}

/**
 * For service entry points: parse, or print one line per bad setting and exit 1.
 * Keeps configuration errors out of stack traces deep inside a service.
 */
export function loadSettingsOrExit<Shape extends z.ZodRawShape>(
  service: string,
  shape: Shape,
  env: Env = process.env,
): z.infer<z.ZodObject<Shape>> {
  try {
    return parseSettings(shape, env);
  } catch (error) {
    if (error instanceof SettingsError) exitNaming(service, error);
    throw error;
  }
}

/**
 * For service entry points, after loadSettingsOrExit: the rules across settings (or about the files
 * they name) that a shape of single settings cannot express. A SettingsError from `check` is reported
 * as loadSettingsOrExit reports one, so the operator gets one line per setting instead of a stack trace.
 * Returns what `check` returns (a client built from files the settings name).
 */
export function checkSettingsOrExit<T>(service: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof SettingsError) exitNaming(service, error);
    throw error;
  }
}

/** One stderr line per bad setting (`<service>: invalid configuration: SETTING issue`), then exit 1. */
export function exitNaming(service: string, error: SettingsError): never {
  for (const problem of error.problems) {
    process.stderr.write(`${service}: invalid configuration: ${problem.setting} ${problem.issue}\n`);
  }
  process.exit(1);
}
