// The web console's build: Vite bundles services/console (its vite.config.ts) into a static folder
// the control plane serves at /console (CONSOLE_DIR, default dist/console). Run by `make build`
// (scripts/build.ts, into <outdir>/console) and by `make console-build` alone (which `make dev` and
// `make test` run first).
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'vite';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CONSOLE_PACKAGE_DIR = path.join(ROOT, 'services/console');
export const DEFAULT_CONSOLE_OUT_DIR = path.join(ROOT, 'dist/console');

/**
 * Where a build's source maps go: beside the folder the control plane serves (dist/console-sourcemaps
 * for dist/console), never in it. They hold the console's whole source; the bundles name none of them
 * (vite.config.ts `sourcemap: 'hidden'`), and an operator loads one into the browser's developer tools
 * or an error tracker to read a stack trace.
 */
export const consoleSourceMapsDir = (outDir: string) => `${path.resolve(outDir)}-sourcemaps`;

export async function buildConsole(outDir: string = DEFAULT_CONSOLE_OUT_DIR): Promise<void> {
  await build({
    configFile: path.join(CONSOLE_PACKAGE_DIR, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: path.resolve(outDir), emptyOutDir: true },
  });
  await moveSourceMaps(path.resolve(outDir), consoleSourceMapsDir(outDir));
}

/** Moves every `.map` file of `from` to the same path under `to` (emptied first, as the build's folder). */
async function moveSourceMaps(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  const maps = (await readdir(from, { recursive: true })).filter((file) => file.endsWith('.map'));
  for (const map of maps) {
    await mkdir(path.dirname(path.join(to, map)), { recursive: true });
    await rename(path.join(from, map), path.join(to, map));
  }
}

/**
 * What the console's bundle is made of: its own sources and the schemas and shapes it imports, with
 * the shared modules their checks use (domain, net, http, routing, tls: all of shared/src, to miss none).
 */
const CONSOLE_SOURCES = [
  'services/console/src',
  'services/console/index.html',
  'services/console/vite.config.ts',
  'services/control-plane/src/schemas',
  'services/control-plane/src/domain',
  'shared/src',
];

async function newestModification(entry: string): Promise<number> {
  const info = await stat(entry).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const children = await readdir(entry);
  const times = await Promise.all(children.map((child) => newestModification(path.join(entry, child))));
  return Math.max(info.mtimeMs, ...times);
}

/**
 * Builds the console into `outDir` unless a build there is newer than every source it is made of
 * (tests use the folder `make test`'s console-build step made, and rebuild it only when it is stale).
 */
export async function ensureConsoleBuilt(
  outDir: string = DEFAULT_CONSOLE_OUT_DIR,
): Promise<'fresh' | 'built'> {
  const built = await stat(path.join(outDir, 'index.html')).catch(() => null);
  if (built) {
    const sources = await Promise.all(
      CONSOLE_SOURCES.map((entry) => newestModification(path.join(ROOT, entry))),
    );
    if (built.mtimeMs >= Math.max(...sources)) return 'fresh';
  }
  await buildConsole(outDir);
  return 'built';
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist/console' } } });
  const started = performance.now();
  const outDir = path.resolve(ROOT, values.outdir);
  await buildConsole(outDir);
  console.log(
    `built the console into ${path.relative(ROOT, outDir)}/ in ${Math.round(performance.now() - started)} ms`,
  );
}
