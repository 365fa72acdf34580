import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root (shared/src/testing → ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Writes a benchmark's result as `bench-results/<kind>-<at>.json` (git-ignored; `at` an ISO time, made
 * safe for file names) and returns the path relative to the repository, for the summary line.
 */
export async function writeBenchResult(kind: string, at: string, result: unknown): Promise<string> {
  const dir = path.join(REPO_ROOT, 'bench-results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${kind}-${at.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return path.relative(REPO_ROOT, file);
}
