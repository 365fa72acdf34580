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

function checkOps(
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [path.join(dir, 'infra/check-ops.sh')],
      { timeout: 120_000, env },
      (error, stdout, stderr) =>
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

// Each run of the script takes seconds (compose and promtool start several times): two runs in all.
describe('infra/check-ops.sh', () => {
  // Regression: compose reads a setting from the shell before the env file, so on a machine whose shell
  // exports one (as running a service outside compose asks) every refusal check of it failed.
  it('passes on the deployment files as they are, also when the shell exports the required settings', async () => {
    const exported = Object.fromEntries(
      REQUIRED.map((name) => [name, `exported-${name.toLowerCase()}-0123456789`]),
    );
    const { code, output } = await checkOps(await deploymentFiles(), { ...process.env, ...exported });
    expect(code, output).toBe(0);
    for (const name of REQUIRED)
      expect(output).toContain(`ok    docker-compose config refuses a stack without ${name}`);
  });

  // Regression: the check left out every required setting but API_KEY_PEPPER and looked only for
  // "make compose-env" in the error, which the messages of GATEWAY_ADMIN_TOKEN and GRAFANA_ADMIN_PASSWORD
  // hold too: a compose file that no longer required CLERK_JWT_KEY passed it. Each check runs with every
  // other setting given, so one copy requiring none of them shows each check failing on its own.
  it('fails, naming each, when docker-compose.yml no longer requires the settings', async () => {
    const edit = (compose: string) => REQUIRED.reduce((edited, name) => optional(name)(edited), compose);
    const { code, output } = await checkOps(await deploymentFiles(edit));
    expect(code, output).toBe(1);
    for (const name of REQUIRED)
      expect(output).toContain(`FAIL  docker-compose config refuses a stack without ${name}`);
    expect(output).toContain('ok    docker-compose config (docker-compose.yml)');
  });
});
