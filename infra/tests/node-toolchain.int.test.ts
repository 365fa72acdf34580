import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `make` runs every target on Node 24: on a machine whose Node is older (CI's has Node 20), it unpacks
 * the official Node 24 binary from the npm registry into .tools/node24 and puts it first on PATH.
 * The "system Node" here is a stand-in that reports an older (or newer) major version and otherwise
 * runs the real node, so npm keeps working.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let fakeBin: string;

/** PATH without any provisioned Node, as on a machine that has only its system Node. */
const systemPath = (process.env['PATH'] ?? '')
  .split(':')
  .filter((dir) => !dir.includes('.tools/node'))
  .join(':');

async function fakeSystemNode(major: number): Promise<string> {
  const dir = path.join(fakeBin, `node${major}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const script = [
    '#!/bin/sh',
    `if [ "$1" = "-p" ] && [ "$2" = 'process.versions.node.split(".")[0]' ]; then echo ${major}; exit 0; fi`,
    `if [ "$1" = "--version" ]; then echo v${major}.0.0; exit 0; fi`,
    `exec "${process.execPath}" "$@"`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'node'), script);
  await chmod(path.join(dir, 'node'), 0o755);
  return dir;
}

function run(
  command: string,
  args: string[],
  pathValue: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env: { ...process.env, PATH: pathValue, MAKEFLAGS: '' }, timeout: 300_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  fakeBin = await mkdtemp(path.join(os.tmpdir(), 've-fake-node-'));
});
afterAll(async () => {
  await rm(fakeBin, { recursive: true, force: true });
});

describe('Node 24 for every make target', () => {
  it('runs make targets on Node 24 when the system has only Node 20', async () => {
    const node20 = await fakeSystemNode(20);
    const result = await run('make', ['-s', 'node-version'], `${node20}:${systemPath}`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toMatch(/^v24\.\d+\.\d+$/);
  });

  it('leaves a system Node that is recent enough alone', async () => {
    const node26 = await fakeSystemNode(26);
    const provisioned = await run('bash', ['scripts/provision-node.sh'], `${node26}:${systemPath}`);
    expect(provisioned.code, provisioned.stderr).toBe(0);
    expect(provisioned.stdout).toBe('');
    const result = await run('make', ['-s', 'node-version'], `${node26}:${systemPath}`);
    expect(result.stdout.trim()).toBe('v26.0.0');
  });
});
