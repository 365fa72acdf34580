import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { INTEGRATION_FILES_ISOLATED, UNIT_FILES_ISOLATED } from './isolated-test-files.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What makes a test file reach the files after it in a worker that shares its modules. */
const PROCESS_WIDE = [
  { reason: 'replaces a module', pattern: /\bvi\.(?:mock|doMock)\(/ },
  {
    reason: 'listens for every unhandled error or warning of the process',
    pattern: /\bprocess\.(?:on|once)\(\s*'(?:unhandledRejection|uncaughtException|warning)'/,
  },
  {
    reason: "registers OpenTelemetry's global tracer provider or diagnostics logger",
    pattern:
      /\b(?:recordSpans|startTelemetry|startTraceSdk|startGatewayTelemetry)\(|tracingEnabled:\s*true|\bdiag\.setLogger\(/,
  },
  { reason: 'stubs the environment', pattern: /\bvi\.stubEnv\(/ },
];

function trackedTestFiles(suffixes: readonly string[]): string[] {
  return execFileSync('git', ['ls-files', '-z', ...suffixes.map((suffix) => `*${suffix}`)], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((file) => file !== '');
}

/** Each file of `files` that does something process-wide, with what it does. */
function processWideFiles(files: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of files) {
    const source = readFileSync(path.join(ROOT, file), 'utf8');
    const match = PROCESS_WIDE.find(({ pattern }) => pattern.test(source));
    if (match) found.set(file, match.reason);
  }
  return found;
}

describe('test files run in a module graph of their own', () => {
  it.each([
    ['unit', ['.unit.test.ts'], UNIT_FILES_ISOLATED],
    ['integration', ['.int.test.ts', '.e2e.test.ts'], INTEGRATION_FILES_ISOLATED],
  ] as const)(
    'every %s file that changes process-wide state is listed as isolated',
    (_layer, suffixes, isolated) => {
      const files = trackedTestFiles(suffixes);
      expect(files.length).toBeGreaterThan(50);
      const unlisted = [...processWideFiles(files)]
        .filter(([file]) => !isolated.includes(file))
        .map(([file, reason]) => `${file}: ${reason}`);
      expect(unlisted).toEqual([]);
      // A listed file that no longer exists is a stale entry.
      expect(isolated.filter((file) => !files.includes(file))).toEqual([]);
    },
  );
});
