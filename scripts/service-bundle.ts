// How a service entry point is compiled for production (`make build`) and for the benchmark's
// processes (bench/run.ts), so that both run the same code: esbuild bundles the @vantageedge/*
// workspace packages (TypeScript sources) into one ESM file per entry point; npm dependencies stay
// external and load from node_modules at run time.
import { type BuildOptions, build } from 'esbuild';

export type BundleEntries = Readonly<Record<string, string>>;

/** Bundles `entries` (output name without .js → source file) into `outDir`, inside the repository. */
export async function bundleServices(root: string, entries: BundleEntries, outDir: string): Promise<void> {
  await build(serviceBundleOptions(root, entries, outDir));
}

export function serviceBundleOptions(root: string, entries: BundleEntries, outDir: string): BuildOptions {
  return {
    absWorkingDir: root,
    entryPoints: Object.entries(entries).map(([out, source]) => ({ out, in: source })),
    outdir: outDir,
    bundle: true,
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
        // npm packages stay in node_modules; the @vantageedge/* workspace packages resolve to their .ts
        // sources through node_modules symlinks, which `packages: 'external'` would leave out.
        name: 'npm-packages-external',
        setup(plugin) {
          plugin.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.path.startsWith('@vantageedge/') || args.path.startsWith('node:')) return undefined;
            return { path: args.path, external: true };
          });
        },
      },
    ],
  };
}
