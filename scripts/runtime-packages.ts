// Which npm packages the compiled services load from node_modules, read from esbuild's own account of
// the bundles `make build` writes: what a production install (`npm ci --omit=dev`) must contain.
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';
import { packageOfSpecifier } from './architecture/import-graph.js';
import { type BundleEntries, serviceBundleOptions } from './service-bundle.js';

/** Package names (without subpaths) the bundles of `entries` import at run time. Writes nothing. */
export async function packagesImportedAtRunTime(root: string, entries: BundleEntries): Promise<Set<string>> {
  const { metafile } = await build({
    ...serviceBundleOptions(root, entries, path.join(root, '.data', 'unwritten-bundles')),
    write: false,
    metafile: true,
    sourcemap: false,
  });
  const packages = new Set<string>();
  for (const input of Object.values(metafile.inputs)) {
    for (const imported of input.imports) {
      if (imported.external && !isBuiltin(imported.path)) packages.add(packageOfSpecifier(imported.path));
    }
  }
  return packages;
}
