import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotSubscription } from '@vantageedge/shared/snapshot-bus/port';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  type CliRun,
  eventually,
  type GatewayReplica,
  REPO_ROOT,
  runVantageedge,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
  vantageedgeNodeArgs,
} from './harness.js';
import { eventPosition, whenServedEverywhere } from './served-version.js';

/**
 * Operator tooling through real processes: control plane, both projectors and two gateway replicas on
 * the shared PostgreSQL, Redis and Kafka, and the `vantageedge` CLI as its own process.
 *
 * - The config at a past position equals the snapshot the gateways were sent at that version (every
 *   snapshot record of the tenant on the topic, read as the replicas read it).
 * - A rollback restores a deleted route and a changed rate limit, and both replicas serve it again.
 * - `vantageedge diff` exits 0/1, `apply` changes the tenant once and a second run appends nothing.
 */

const SUBDOMAIN = 'tooling';

let system: TestSystem;
let origin: TestOrigin;
let replicas: GatewayReplica[] = [];
let tenantId = '';
let usersRoute = '';
let postsRoute = '';
/** Every snapshot of the tenant published on the topic, by version: what the replicas applied. */
const published = new Map<string, TenantSnapshot>();
let subscription: SnapshotSubscription | undefined;
let cliFolder = '';
const afterAllHooks: Array<() => Promise<void>> = [];

const head = async () =>
  BigInt((await system.database.pool.query('select value from event_store_position')).rows[0].value);

const servedEverywhere = (version: bigint | string) =>
  whenServedEverywhere(replicas, tenantId, version, system);

/** What each replica answers for a path: status and the route limit it announces. */
async function served(pathname: string): Promise<Array<{ status: number; policy: string | undefined }>> {
  return Promise.all(
    replicas.map(async (replica) => {
      const response = await replica.get(SUBDOMAIN, pathname);
      const policy = response.headers['ratelimit-policy'];
      return { status: response.status, policy: typeof policy === 'string' ? policy : undefined };
    }),
  );
}

/** `vantageedge …` as its own process, with this suite's config file. */
function cli(args: string[], { input }: { input?: string } = {}): Promise<CliRun> {
  return runVantageedge(args, {
    configFile: path.join(cliFolder, 'config.json'),
    ...(input === undefined ? {} : { input }),
  });
}

beforeAll(async () => {
  system = await TestSystem.create({ gatewayEnv: { GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0' } });
  origin = await startOrigin('tooling-origin');
  await system.startControlSide();
  replicas = await system.startGateways(2);
  cliFolder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-e2e-cli-'));

  const bus = createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: 'e2e-tooling-reader',
    topic: system.topic,
    partitions: 3,
    replicationFactor: 1,
    maxMessageBytes: 1_048_576,
  });
  subscription = await bus.subscribe({
    onMessage: (message) => {
      if (message.kind === 'snapshot' && message.tenantId === tenantId) {
        published.set(message.snapshot.version, message.snapshot);
      }
    },
    onCaughtUp: () => {},
    onHealth: () => {},
  });
  const closeBus = async () => {
    await subscription?.close();
    await bus.close();
  };
  afterAllHooks.push(closeBus);

  const tenant = await system.admin('POST', '/api/v1/tenants', {
    body: { name: 'Tooling', subdomain: SUBDOMAIN },
  });
  expect(tenant.status, tenant.text).toBe(201);
  tenantId = tenant.body['id'] as string;
  const backend = await system.admin('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'backend', url: origin.url },
  });
  const users = await system.admin('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: backend.body['id'],
      path_pattern: '/users/*',
      auth_mode: 'public',
      rate_limit: { requests_per_second: 100, burst: 50, scope: 'ip' },
    },
  });
  usersRoute = users.body['id'] as string;
  const posts = await system.admin('POST', '/api/v1/routes', {
    body: {
      tenant_id: tenantId,
      origin_id: backend.body['id'],
      path_pattern: '/posts/*',
      auth_mode: 'public',
    },
  });
  expect(posts.status, posts.text).toBe(201);
  postsRoute = posts.body['id'] as string;
}, 240_000);

afterAll(async () => {
  for (const hook of afterAllHooks) await hook().catch(() => {});
  await system?.close();
  await origin?.close();
  await stopAllServices();
  if (cliFolder) await rm(cliFolder, { recursive: true, force: true });
});

describe('config history and rollback, seen by two gateway replicas', () => {
  let original = '';

  it('the config at a past position is the snapshot the replicas were sent at that version', async () => {
    original = (await head()).toString();
    await servedEverywhere(original);
    expect(await served('/posts/1')).toEqual([
      { status: 200, policy: undefined },
      { status: 200, policy: undefined },
    ]);
    expect((await served('/users/1')).map((answer) => answer.policy)).toEqual([
      '"route_ip";q=50;w=1',
      '"route_ip";q=50;w=1',
    ]);

    // Then the route is deleted and the limit changed; both replicas follow.
    const limited = await system.admin('PATCH', `/api/v1/routes/${usersRoute}`, {
      body: { rate_limit: { requests_per_second: 100, burst: 5, scope: 'ip' } },
    });
    expect(limited.status, limited.text).toBe(200);
    const deleted = await system.admin('DELETE', `/api/v1/routes/${postsRoute}`);
    expect(deleted.status, deleted.text).toBe(204);
    await servedEverywhere(eventPosition(deleted));
    expect((await served('/posts/1')).map((answer) => answer.status)).toEqual([404, 404]);
    expect((await served('/users/1')).map((answer) => answer.policy)).toEqual([
      '"route_ip";q=5;w=1',
      '"route_ip";q=5;w=1',
    ]);

    // Every version the replicas were sent, folded again from the log at that position.
    await eventually('the newest snapshot was read from the topic', async () =>
      published.has(deleted.headers.get('x-event-position') ?? ''),
    );
    expect(published.has(original)).toBe(true);
    for (const [version, snapshot] of published) {
      const response = await system.admin('GET', `/api/v1/tenants/${tenantId}/config?at_position=${version}`);
      expect(response.status, response.text).toBe(200);
      const { schema_version: _schema, api_keys, certificates, ...content } = snapshot;
      expect(response.body, `config at ${version}`).toEqual({
        position: version,
        ...content,
        api_keys: api_keys.map(({ key_hash: _hash, ...key }) => key),
        certificates: certificates.map(({ private_key: _key, ...certificate }) => certificate),
      });
    }
    const past = await system.admin('GET', `/api/v1/tenants/${tenantId}/config?at_position=${original}`);
    expect((past.body['routes'] as Array<{ id: string }>).map((route) => route.id).sort()).toEqual(
      [usersRoute, postsRoute].sort(),
    );
  }, 120_000);

  it('a rollback restores the deleted route and the old limit on both replicas, as new events', async () => {
    const before = await head();
    const rollback = await system.admin(
      'POST',
      `/api/v1/tenants/${tenantId}/config/rollback?wait_for_rollout=30s`,
      {
        body: { to_position: original },
      },
    );
    expect(rollback.status, rollback.text).toBe(200);
    expect(rollback.headers.get('x-rollout')).toBe('complete');
    expect(
      (rollback.body['changes'] as Array<{ change: string; id: string }>).map((c) => [c.change, c.id]),
    ).toEqual(
      expect.arrayContaining([
        ['restored', postsRoute],
        ['changed', usersRoute],
      ]),
    );
    // Both replicas serve the restored route and the old limit again.
    expect((await served('/posts/1')).map((answer) => answer.status)).toEqual([200, 200]);
    expect((await served('/users/1')).map((answer) => answer.policy)).toEqual([
      '"route_ip";q=50;w=1',
      '"route_ip";q=50;w=1',
    ]);

    // Recorded, not rewritten: the old versions are still there, the rollback is new events.
    expect(await head()).toBeGreaterThan(before);
    const now = await system.admin('GET', `/api/v1/tenants/${tenantId}/config`);
    const then = await system.admin('GET', `/api/v1/tenants/${tenantId}/config?at_position=${original}`);
    const strip = (body: Record<string, unknown>) => {
      const { position: _p, version: _v, event_time: _t, ...rest } = body;
      return rest;
    };
    expect(strip(now.body)).toEqual(strip(then.body));
    const history = await system.admin('GET', `/api/v1/tenants/${tenantId}/config/history?limit=5`, {
      headers: { 'x-min-position': String(await head()) },
    });
    const entries = history.body['data'] as Array<{
      event_type: string;
      summary: string;
      causation_id: string;
    }>;
    expect(entries.map((entry) => entry.event_type)).toEqual(
      expect.arrayContaining(['ConfigRolledBack', 'RouteCreated', 'RouteUpdated']),
    );
    expect(entries.find((entry) => entry.event_type === 'ConfigRolledBack')?.summary).toBe(
      `rolled back to position ${original} (2 changes)`,
    );
  }, 120_000);
});

describe('the vantageedge CLI against the running product', () => {
  let documentFile = '';

  it('logs in with a token from stdin and lists the tenant', async () => {
    const login = await cli(['login', '--url', system.controlPlaneUrl, '--token-stdin'], {
      input: await system.token(),
    });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain('Logged in');
    const saved = JSON.parse(await readFile(path.join(cliFolder, 'config.json'), 'utf8')) as {
      profiles: Record<string, { url: string }>;
    };
    expect(saved.profiles['default']?.url).toBe(system.controlPlaneUrl);
    const tenants = await cli(['get', 'tenants', '-o', 'json']);
    expect(tenants.code, tenants.stderr).toBe(0);
    expect((JSON.parse(tenants.stdout) as Array<{ subdomain: string }>).map((t) => t.subdomain)).toContain(
      SUBDOMAIN,
    );
    const routes = await cli(['get', 'routes', '-t', SUBDOMAIN]);
    expect(routes.stdout).toMatch(/ID\s+METHODS\s+PATH/);
    expect(routes.stdout).toContain('/posts/*');
  }, 60_000);

  it('dump writes a document that diff finds equal (exit 0); an edit makes it differ (exit 1)', async () => {
    const dump = await cli(['dump', '-t', SUBDOMAIN]);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).toContain('# yaml-language-server: $schema=');
    documentFile = path.join(cliFolder, 'tooling.yaml');
    await writeFile(documentFile, dump.stdout);
    const same = await cli(['diff', '-f', documentFile]);
    expect(same.code, same.stderr + same.stdout).toBe(0);
    expect(same.stdout).toContain('no changes');

    const document = parse(dump.stdout) as { routes: Array<Record<string, unknown>> };
    document.routes.push({ origin: 'backend', path_pattern: '/orders/*', auth_mode: 'public' });
    const users = document.routes.find((route) => route['path_pattern'] === '/users/*');
    if (users) users['rate_limit'] = { requests_per_second: 100, burst: 7, scope: 'ip' };
    await writeFile(documentFile, stringify(document));
    const different = await cli(['diff', '-f', documentFile]);
    expect(different.code).toBe(1);
    expect(different.stdout).toContain('+ route ANY /orders/*');
    expect(different.stdout).toContain('rate_limit.burst: 50 → 7');
    expect(different.stdout).toContain('2 changes: 1 to add, 1 to change.');
  }, 60_000);

  it('apply changes the tenant once, both replicas serve it, and a second apply appends nothing', async () => {
    const before = await head();
    const applied = await cli(['apply', '-f', documentFile, '--wait-for-rollout', '30s']);
    expect(applied.code, `${applied.stderr}${applied.stdout}\n${system.tails()}`).toBe(0);
    expect(applied.stdout).toMatch(/Applied 2 changes to tooling: config version \d+/);
    const after = await head();
    expect(after - before).toBe(2n);
    expect((await served('/orders/1')).map((answer) => answer.status)).toEqual([200, 200]);
    expect((await served('/users/1')).map((answer) => answer.policy)).toEqual([
      '"route_ip";q=7;w=1',
      '"route_ip";q=7;w=1',
    ]);

    const again = await cli(['apply', '-f', documentFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('no changes');
    expect(await head()).toBe(after);
    expect((await cli(['diff', '-f', documentFile])).code).toBe(0);
  }, 90_000);

  it('history lists positions that rollback takes; failures have their exit codes', async () => {
    const history = await cli(['history', '-t', SUBDOMAIN, '-o', 'json']);
    expect(history.code, history.stderr).toBe(0);
    const entries = (JSON.parse(history.stdout) as { data: Array<{ position: string; event_type: string }> })
      .data;
    expect(
      entries
        .slice(0, 2)
        .map((entry) => entry.event_type)
        .sort(),
    ).toEqual(['RouteCreated', 'RouteUpdated']);
    // The two newest entries are the apply's; the one before is the config it started from.
    const beforeApply = entries[2];
    const rollback = (...options: string[]) =>
      cli(['rollback', '-t', SUBDOMAIN, '--to-position', beforeApply?.position ?? '', ...options]);

    const preview = await rollback('--dry-run');
    expect(preview.code, preview.stderr).toBe(0);
    expect(preview.stdout).toContain('- route ANY /orders/*');
    // Run on the version reviewed only: on any other, exit 5 and nothing appended.
    const reviewed = /\(config version (\d+)\)/.exec(preview.stdout)?.[1];
    expect(reviewed).toBeDefined();
    const before = await head();
    const stale = await rollback('--if-version', String(BigInt(reviewed ?? '0') - 1n));
    expect(stale.code, stale.stderr).toBe(5);
    expect(stale.stderr).toContain('412');
    expect(stale.stderr).toContain('--dry-run');
    expect(await head()).toBe(before);
    const onReviewed = await rollback('--if-version', reviewed ?? '', '--dry-run');
    expect(onReviewed.code, onReviewed.stderr).toBe(0);
    expect(onReviewed.stdout).toContain('- route ANY /orders/*');

    const unknown = await cli(['dump', '-t', 'no-such-tenant']);
    expect(unknown.code).toBe(4);
    const invalid = path.join(cliFolder, 'invalid.yaml');
    await writeFile(
      invalid,
      'tenant: {name: Tooling, subdomain: tooling}\nroutes:\n  - {path_pattern: nope, auth_mode: public}\n',
    );
    const refused = await cli(['apply', '-f', invalid]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('routes.0.path_pattern');
    const missing = await cli(['apply', '-f', invalid, '-t', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).toBe(4);
  }, 60_000);

  it('the GitOps example job: diff tolerates differences, apply applies, and the next diff is clean', async () => {
    const repo = path.join(cliFolder, 'gitops');
    await mkdir(path.join(repo, 'tenants'), { recursive: true });
    await copyFile(path.join(REPO_ROOT, 'examples/gitops/ci.sh'), path.join(repo, 'ci.sh'));
    const document = parse(await readFile(documentFile, 'utf8')) as {
      routes: Array<Record<string, unknown>>;
    };
    document.routes.push({ origin: 'backend', path_pattern: '/invoices/*', auth_mode: 'public' });
    await writeFile(path.join(repo, 'tenants', `${SUBDOMAIN}.yaml`), stringify(document));
    const env = {
      ...process.env,
      NODE_OPTIONS: '',
      VANTAGEEDGE: [process.execPath, ...vantageedgeNodeArgs()].join(' '),
      VANTAGEEDGE_URL: system.controlPlaneUrl,
      VANTAGEEDGE_TOKEN: await system.token(),
      VANTAGEEDGE_CONFIG: path.join(repo, 'no-login.json'),
      ROLLOUT_WAIT: '30s',
    };
    const job = (mode: string) =>
      new Promise<CliRun>((resolve) => {
        execFile(
          'bash',
          [path.join(repo, 'ci.sh'), mode],
          { env, timeout: 90_000 },
          (error, stdout, stderr) =>
            resolve({
              code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
              stdout: stdout.toString(),
              stderr: stderr.toString(),
            }),
        );
      });
    const pullRequest = await job('diff');
    expect(pullRequest.code, pullRequest.stderr).toBe(0);
    expect(pullRequest.stdout).toContain('+ route ANY /invoices/*');
    const merged = await job('apply');
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stdout).toContain('Applied 1 change to tooling');
    expect((await served('/invoices/1')).map((answer) => answer.status)).toEqual([200, 200]);
    const next = await job('diff');
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toContain('no changes');
  }, 120_000);
});
