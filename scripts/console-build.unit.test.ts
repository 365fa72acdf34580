import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConsole, consoleSourceMapsDir } from './console-build.js';

// The console bundles the control plane's request schemas, whose checks import Node built-ins; the
// browser build resolves those to src/browser-stand-ins, which must export every name the schemas
// import, or `make dev`, `make build` and `make test` stop at the console build.
describe("the web console's build", () => {
  const outDirs: string[] = [];
  afterAll(async () => {
    await Promise.all(outDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('bundles the console with the schemas it imports', { timeout: 60_000 }, async () => {
    const outDir = await mkdtemp(path.join(tmpdir(), 'vantageedge-console-build-'));
    outDirs.push(outDir);
    await buildConsole(outDir);
    expect(await readdir(outDir)).toContain('index.html');
  });

  // What the control plane serves is the folder itself: the maps (the console's whole source) stay
  // beside it, for an operator to map a stack trace, and no bundle names them.
  it('keeps its source maps out of the folder it builds, and no bundle links one', {
    timeout: 60_000,
  }, async () => {
    const outDir = await mkdtemp(path.join(tmpdir(), 'vantageedge-console-build-'));
    outDirs.push(outDir, consoleSourceMapsDir(outDir));
    await buildConsole(outDir);
    const served = await readdir(outDir, { recursive: true });
    expect(served.filter((file) => file.endsWith('.map'))).toEqual([]);
    const scripts = served.filter((file) => file.endsWith('.js'));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) {
      expect(await readFile(path.join(outDir, script), 'utf8'), script).not.toContain('sourceMappingURL');
    }
    const maps = await readdir(consoleSourceMapsDir(outDir), { recursive: true });
    expect(maps.filter((file) => file.endsWith('.js.map')).sort()).toEqual(
      scripts.map((script) => `${script}.map`).sort(),
    );
  });
});
