// `make build`: bundles each service entry point into dist/ with esbuild. The workspace packages
// (@vantageedge/*, TypeScript sources) are bundled in; npm dependencies stay external and are loaded
// from node_modules at run time (the image installs them with `npm ci --omit=dev`).
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SCALAR_BUNDLE_FILE, scalarBundleInNodeModules } from '@vantageedge/control-plane/http/docs-page';
import { build } from 'esbuild';
import { BUILD_ENTRY_POINTS as ENTRY_POINTS } from './build-entry-points.js';
import { buildConsole } from './console-build.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --outdir: another folder inside the repository (tests build into .data/ so node_modules resolves).
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } });
const OUT = path.resolve(ROOT, values.outdir);

await rm(OUT, { recursive: true, force: true });
const started = performance.now();
await build({
  absWorkingDir: ROOT,
  entryPoints: Object.entries(ENTRY_POINTS).map(([out, source]) => ({ out, in: source })),
  outdir: OUT,
  bundle: true,
  // npm packages stay in node_modules; the @vantageedge/* workspace packages resolve to their .ts
  // sources through node_modules symlinks, which `packages: 'external'` would leave out, so they are
  // marked bundleable by the plugin below.
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // One self-contained file per entry point (no shared chunks), so a file's own location is stable
  // (the migrator finds its SQL beside itself).
  sourcemap: true,
  sourcesContent: false,
  logLevel: 'warning',
  plugins: [
    {
      name: 'npm-packages-external',
      setup(plugin) {
        plugin.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.path.startsWith('@vantageedge/') || args.path.startsWith('node:')) return undefined;
          return { path: args.path, external: true };
        });
      },
    },
  ],
});
// The migrator reads its SQL files beside itself (dist/migrations/sql).
await cp(path.join(ROOT, 'migrations/sql'), path.join(OUT, 'migrations/sql'), { recursive: true });
// The API reference page's script (a development dependency) beside the compiled control plane.
await cp(scalarBundleInNodeModules(), path.join(OUT, 'services/control-plane', SCALAR_BUNDLE_FILE));
// The web console: static files the control plane serves at /console (CONSOLE_DIR=dist/console).
await buildConsole(path.join(OUT, 'console'));
console.log(
  `built ${Object.keys(ENTRY_POINTS).length} entry points and the console into ${path.relative(ROOT, OUT)}/ in ${Math.round(performance.now() - started)} ms`,
);
