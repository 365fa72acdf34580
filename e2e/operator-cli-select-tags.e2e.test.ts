import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type CliRun, runVantageedge, stopAllServices, TestSystem } from './harness.js';

/**
 * Two teams sharing one tenant with the `vantageedge` CLI (its own process, against a real control
 * plane and its projectors): each dumps, edits and applies only its share (`--select-tag`, a document
 * with select_tags), and the other team's routes stay as they were.
 */

let system: TestSystem;
let folder = '';

function cli(args: string[], input?: string): Promise<CliRun> {
  return runVantageedge(args, {
    configFile: path.join(folder, 'config.json'),
    env: { VANTAGEEDGE_URL: system.controlPlaneUrl },
    ...(input === undefined ? {} : { input }),
  });
}

let lastPosition = '0';

async function admin(method: string, pathname: string, body: unknown) {
  const response = await system.admin(method, pathname, { body });
  expect(response.status, response.text).toBeLessThan(300);
  lastPosition = response.headers.get('x-event-position') ?? lastPosition;
  return response.body;
}

/** A resource as the admin API reads it once its read models hold every change made so far. */
async function read(pathname: string) {
  const response = await system.admin('GET', pathname, { headers: { 'x-min-position': lastPosition } });
  expect(response.status, response.text).toBe(200);
  return response.body;
}

interface ShareDocument {
  select_tags: string[];
  routes: Array<{ path_pattern: string; tags: string[]; priority: number }>;
}

beforeAll(async () => {
  system = await TestSystem.create();
  await system.startControlSide();
  folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-e2e-select-tags-'));
  const login = await cli(['login', '--url', system.controlPlaneUrl, '--token-stdin'], await system.token());
  expect(login.code, login.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('vantageedge dump --select-tag, then apply', () => {
  it('manages one team’s routes and leaves the other team’s untouched', async () => {
    const tenantId = (await admin('POST', '/api/v1/tenants', { name: 'shared', subdomain: 'sharedtags' }))[
      'id'
    ] as string;
    const originId = (
      await admin('POST', '/api/v1/origins', {
        tenant_id: tenantId,
        name: 'backend',
        url: 'http://127.0.0.1:9',
      })
    )['id'] as string;
    const route = (pattern: string, tags: string[]) =>
      admin('POST', '/api/v1/routes', {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: pattern,
        auth_mode: 'public',
        tags,
      });
    await route('/payments/*', ['payments']);
    await route('/payments-old/*', ['payments']);
    const search = (await route('/search/*', ['search']))['id'] as string;
    const searchBefore = await read(`/api/v1/routes/${search}`);

    const dump = await cli(['dump', '-t', 'sharedtags', '--select-tag', 'payments']);
    expect(dump.code, dump.stderr).toBe(0);
    const share = parse(dump.stdout) as ShareDocument;
    expect(share.select_tags).toEqual(['payments']);
    expect(share.routes.map((entry) => entry.path_pattern).sort()).toEqual([
      '/payments-old/*',
      '/payments/*',
    ]);

    // The payments team edits its file: one route changed, one dropped, one added without tags.
    const edited = {
      ...share,
      routes: [
        { ...share.routes.find((entry) => entry.path_pattern === '/payments/*'), priority: 7 },
        { origin_id: originId, path_pattern: '/refunds/*', auth_mode: 'public' },
      ],
    };
    const file = path.join(folder, 'payments.yaml');
    await writeFile(file, stringify(edited));
    const applied = await cli(['apply', '-f', file, '-t', 'sharedtags']);
    expect(applied.code, applied.stderr).toBe(0);
    const clean = await cli(['diff', '-f', file, '-t', 'sharedtags']);
    expect(clean.code, clean.stdout).toBe(0);

    const after = await cli(['dump', '-t', 'sharedtags', '-o', 'json']);
    expect(after.code, after.stderr).toBe(0);
    const whole = JSON.parse(after.stdout) as {
      routes: Array<{ path_pattern: string; tags: string[]; priority: number }>;
    };
    expect(whole.routes.map((entry) => [entry.path_pattern, entry.tags, entry.priority]).sort()).toEqual(
      [
        ['/payments/*', ['payments'], 7],
        ['/refunds/*', ['payments'], 0],
        ['/search/*', ['search'], 0],
      ].sort(),
    );
    // Read once the read models hold the apply's changes (the config version is its last event).
    lastPosition = (await system.admin('GET', `/api/v1/tenants/${tenantId}/config`)).body[
      'version'
    ] as string;
    expect(await read(`/api/v1/routes/${search}`)).toEqual(searchBefore);
  });
});
