import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * `make test-ops` (infra/check-ops.sh) run on a copy of the deployment files, so a copy with a defect
 * planted in it shows that the check the script names would catch it.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const COPIED = [
  'docker-compose.yml',
  'infra/check-ops.sh',
  'infra/ops-tools.sh',
  'infra/lib.sh',
  'infra/observability',
];
const REQUIRED = ['API_KEY_PEPPER', 'CLERK_JWT_KEY', 'GATEWAY_ADMIN_TOKEN', 'GRAFANA_ADMIN_PASSWORD'];

const copies: string[] = [];
afterEach(async () => {
  await Promise.all(copies.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A copy of the deployment files, its docker-compose.yml passed through `edit`. */
async function deploymentFiles(edit: (compose: string) => string = (compose) => compose): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 've-check-ops-'));
  copies.push(dir);
  for (const file of COPIED) await cp(path.join(ROOT, file), path.join(dir, file), { recursive: true });
  const compose = path.join(dir, 'docker-compose.yml');
  const edited = edit(await readFile(compose, 'utf8'));
  await writeFile(compose, edited);
  return dir;
}

function checkOps(dir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('bash', [path.join(dir, 'infra/check-ops.sh')], { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        output: stdout + stderr,
      }),
    );
  });
}

/** `${NAME:?message}` → `${NAME:-}`: compose would then start the stack without it. */
function optional(name: string): (compose: string) => string {
  return (compose) => {
    const required = new RegExp(`\\$\\{${name}:\\?[^}]*\\}`, 'g');
    expect(compose).toMatch(required);
    return compose.replace(required, `\${${name}:-}`);
  };
}

describe('infra/check-ops.sh', () => {
  it('passes on the deployment files as they are', async () => {
    const { code, output } = await checkOps(await deploymentFiles());
    expect(code, output).toBe(0);
    for (const name of REQUIRED)
      expect(output).toContain(`ok    docker-compose config refuses a stack without ${name}`);
  });

  // Regression: the check left out every required setting but API_KEY_PEPPER and looked only for
  // "make compose-env" in the error, which the messages of GATEWAY_ADMIN_TOKEN and GRAFANA_ADMIN_PASSWORD
  // hold too: a compose file that no longer required CLERK_JWT_KEY passed it.
  it.each(REQUIRED)('fails when docker-compose.yml no longer requires %s', async (name) => {
    const { code, output } = await checkOps(await deploymentFiles(optional(name)));
    expect(code, output).toBe(1);
    expect(output).toContain(`FAIL  docker-compose config refuses a stack without ${name}`);
  });
});
