import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How tests run a service's entry point as its own process. The integration project's global setup
 * (scripts/test-service-bundle.ts) compiles every entry point once per run, as `make build` does, and
 * names the folder in SERVICE_BUNDLE_DIR_VARIABLE; a process started from its bundle spends about 40 % of
 * the start-up CPU of one started through tsx, which transpiles every module as it loads. Without that
 * folder (a file run outside the integration project, a fault or cluster run) the TypeScript sources
 * run through tsx, as before.
 */

export const SERVICE_BUNDLE_DIR_VARIABLE = 'VANTAGEEDGE_TEST_SERVICE_BUNDLE';
/** Beside the bundles: source entry point (from the repository root) → absolute path of its bundle. */
export const SERVICE_BUNDLE_MANIFEST = 'entry-points.json';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// tsx's loader found from here, not from the process's working directory (which may be outside the repository).
const TSX_LOADER = createRequire(import.meta.url).resolve('tsx');

const manifests = new Map<string, Readonly<Record<string, string>>>();

function manifestIn(dir: string): Readonly<Record<string, string>> | undefined {
  const cached = manifests.get(dir);
  if (cached !== undefined) return cached;
  const file = path.join(dir, SERVICE_BUNDLE_MANIFEST);
  if (!existsSync(file)) return undefined;
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  manifests.set(dir, manifest);
  return manifest;
}

/** The bundle of `entry` (a .ts entry point, from the repository root or absolute), when this run has one. */
export function bundledEntryPoint(entry: string): string | undefined {
  const dir = process.env[SERVICE_BUNDLE_DIR_VARIABLE];
  if (dir === undefined || dir === '') return undefined;
  const source = path.relative(REPO_ROOT, path.resolve(REPO_ROOT, entry)).split(path.sep).join('/');
  const bundle = manifestIn(dir)?.[source];
  return bundle !== undefined && existsSync(bundle) ? bundle : undefined;
}

/**
 * Node's arguments (before the program's own) that run `entry` from the repository root: a compiled
 * .js file as it is, a .ts entry point from this run's bundle (source-mapped, so stack traces name the
 * .ts files) or else through tsx's loader.
 */
export function serviceNodeArgs(entry: string): string[] {
  if (entry.endsWith('.js')) return [entry];
  const bundle = bundledEntryPoint(entry);
  return bundle === undefined ? ['--import', TSX_LOADER, entry] : ['--enable-source-maps', bundle];
}
