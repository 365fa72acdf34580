// `make build`: bundles each service entry point into dist/ with esbuild. The workspace packages
// (@vantageedge/*, TypeScript sources) are bundled in; npm dependencies stay external and are loaded
// from node_modules at run time (the image installs them with `npm ci --omit=dev`).
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SCALAR_BUNDLE_FILE, scalarBundleInNodeModules } from '@vantageedge/control-plane/http/docs-page';
import { BUILD_ENTRY_POINTS as ENTRY_POINTS } from './build-entry-points.js';
import { buildConsole } from './console-build.js';
import { bundleServices } from './service-bundle.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --outdir: another folder inside the repository (tests build into .data/ so node_modules resolves).
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } });
const OUT = path.resolve(ROOT, values.outdir);

await rm(OUT, { recursive: true, force: true });
const started = performance.now();
await bundleServices(ROOT, ENTRY_POINTS, OUT);
// The migrator reads its SQL files beside itself (dist/migrations/sql).
await cp(path.join(ROOT, 'migrations/sql'), path.join(OUT, 'migrations/sql'), { recursive: true });
// The API reference page's script (a development dependency) beside the compiled control plane.
await cp(scalarBundleInNodeModules(), path.join(OUT, 'services/control-plane', SCALAR_BUNDLE_FILE));
// The web console: static files the control plane serves at /console (CONSOLE_DIR=dist/console).
await buildConsole(path.join(OUT, 'console'));
console.log(
  `built ${Object.keys(ENTRY_POINTS).length} entry points and the console into ${path.relative(ROOT, OUT)}/ in ${Math.round(performance.now() - started)} ms`,
);
