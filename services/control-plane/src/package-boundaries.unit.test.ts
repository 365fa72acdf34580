import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function productionSources(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...productionSources(full));
    else if (
      entry.name.endsWith('.ts') &&
      !/\.(unit|int|e2e)\.test\.ts$/.test(entry.name) &&
      !full.includes(`${path.sep}testing${path.sep}`)
    )
      files.push(full);
  }
  return files;
}

describe('control-plane package boundaries', () => {
  it('production code imports no gateway module (cache purges speak the shared protocol)', () => {
    const offenders = productionSources(path.join(packageRoot, 'src')).filter((file) =>
      /from '@vantageedge\/gateway[/']/.test(readFileSync(file, 'utf8')),
    );
    expect(offenders.map((file) => path.relative(packageRoot, file))).toEqual([]);
    const manifest = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies ?? {})).not.toContain('@vantageedge/gateway');
  });
});
