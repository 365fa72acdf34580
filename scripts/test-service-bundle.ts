// The integration project's global setup (after shared/src/testing/global-setup.ts): every service
// entry point compiled once per run, as `make build` compiles it, into a folder of its own under .data/
// (inside the repository, so the bundles' npm imports resolve from node_modules). The processes the
// tests start run these files instead of transpiling the same TypeScript through tsx at every start
// (shared/src/testing/service-bundle.ts). Removed when the run ends.
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SERVICE_BUNDLE_DIR_VARIABLE,
  SERVICE_BUNDLE_MANIFEST,
} from '@vantageedge/shared/testing/service-bundle';
import { BUILD_ENTRY_POINTS } from './build-entry-points.js';
import { bundleServices } from './service-bundle.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default async function bundleServicesForTests(): Promise<() => Promise<void>> {
  // Both integration projects name this setup; in one run the second uses the first's bundle, which the
  // first's teardown removes once every project has ended.
  if (process.env[SERVICE_BUNDLE_DIR_VARIABLE] !== undefined) return async () => {};
  const parent = path.join(ROOT, '.data', 'test-service-bundles');
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(path.join(parent, 'run-'));
  await bundleServices(ROOT, BUILD_ENTRY_POINTS, dir);
  // The compiled migrator reads its SQL files beside itself, as in dist/.
  await cp(path.join(ROOT, 'migrations/sql'), path.join(dir, 'migrations/sql'), { recursive: true });
  const manifest = Object.fromEntries(
    Object.entries(BUILD_ENTRY_POINTS).map(([out, source]) => [source, path.join(dir, `${out}.js`)]),
  );
  await writeFile(path.join(dir, SERVICE_BUNDLE_MANIFEST), JSON.stringify(manifest, null, 2));
  // Read by the test workers, which vitest starts after the global setup with its environment.
  process.env[SERVICE_BUNDLE_DIR_VARIABLE] = dir;
  return async () => {
    delete process.env[SERVICE_BUNDLE_DIR_VARIABLE];
    await rm(dir, { recursive: true, force: true });
  };
}
