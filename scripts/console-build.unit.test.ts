import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConsole } from './console-build.js';

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
});
