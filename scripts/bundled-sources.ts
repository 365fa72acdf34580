// Which repository files esbuild bundles into each entry point (the workspace packages' TypeScript
// sources, followed through their imports), read from esbuild's own account of the bundles: what a
// compiled entry point can read settings from, and what a build needs present.
import path from 'node:path';
import { build } from 'esbuild';
import { type BundleEntries, serviceBundleOptions } from './service-bundle.js';

/** Output name (as in `entries`) → the repository files (relative, `/`-separated) bundled into it. Writes nothing. */
export async function sourcesBundled(
  root: string,
  entries: BundleEntries,
): Promise<Map<string, readonly string[]>> {
  const outDir = path.join(root, '.data', 'unwritten-bundles');
  const { metafile } = await build({
    ...serviceBundleOptions(root, entries, outDir),
    write: false,
    metafile: true,
    sourcemap: false,
  });
  const bundled = new Map<string, readonly string[]>();
  for (const name of Object.keys(entries)) {
    const output =
      metafile.outputs[
        path
          .relative(root, path.join(outDir, `${name}.js`))
          .split(path.sep)
          .join('/')
      ];
    if (!output) throw new Error(`esbuild wrote no bundle for ${name}`);
    bundled.set(
      name,
      Object.keys(output.inputs).filter((input) => !input.split('/').includes('node_modules')),
    );
  }
  return bundled;
}
