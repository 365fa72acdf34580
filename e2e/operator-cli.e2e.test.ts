// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type CliRun, runVantageedge, stopAllServices, TestSystem } from './harness.js';

/**
 * The `vantageedge` CLI as its own process against a real control plane and its projectors (no
 * gateways): lists longer than one page of the admin API (200 items), config documents the CLI
 * dumps applied back unchanged, a file applied again appending nothing, and a file dumped before
 * another change refused by `apply --if-version`, and files reading secrets from environment variables.
 * Each group has a tenant of its own and the lists' cases only read theirs, so the groups (but the
 * last) and the lists' cases run side by side: each spends its time waiting for one CLI process after
 * another.
 */

const ROUTES = 205;

let system: TestSystem;
let folder = '';
let listsTenant = '';

function cli(args: string[], input?: string): Promise<CliRun> {
  return runVantageedge(args, {
    configFile: path.join(folder, 'config.json'),
    env: { VANTAGEEDGE_URL: system.controlPlaneUrl },
    ...(input === undefined ? {} : { input }),
  });
}

async function createTenant(subdomain: string): Promise<string> {
  const tenant = await system.admin('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(tenant.status, tenant.text).toBe(201);
  return tenant.body['id'] as string;
}

interface Entry {
  position: string;
  event_type: string;
}

beforeAll(async () => {
  system = await TestSystem.create();
  await system.startControlSide();
  folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-e2e-operator-cli-'));
  const login = await cli(['login', '--url', system.controlPlaneUrl, '--token-stdin'], await system.token());
  expect(login.code, login.stderr).toBe(0);

  // More config changes than one page of the history and the audit log holds: one apply of many routes.
  listsTenant = await createTenant('clilists');
  const document = {
    format: 1,
    tenant: { id: listsTenant, name: 'clilists', subdomain: 'clilists' },
    origins: [{ name: 'backend', url: 'http://127.0.0.1:9' }],
    routes: Array.from({ length: ROUTES }, (_, index) => ({
      origin: 'backend',
      path_pattern: `/r${index}/*`,
      auth_mode: 'public',
    })),
  };
  const file = path.join(folder, 'clilists.yaml');
  await writeFile(file, stringify(document));
  const applied = await cli(['apply', '-f', file]);
  expect(applied.code, applied.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe.concurrent('lists longer than a page of the admin API', () => {
  it('get routes -o json lists every route of the tenant', async () => {
    const routes = await cli(['get', 'routes', '-t', 'clilists', '-o', 'json']);
    expect(routes.code, routes.stderr).toBe(0);
    expect((JSON.parse(routes.stdout) as unknown[]).length).toBe(ROUTES);
  });

  it('history --all reaches the oldest change, newest first', async () => {
    const history = await cli(['history', '-t', 'clilists', '--all', '-o', 'json']);
    expect(history.code, history.stderr).toBe(0);
    const page = JSON.parse(history.stdout) as { data: Entry[]; next_cursor: string | null };
    // The tenant, its origin and every route.
    expect(page.data.length).toBe(ROUTES + 2);
    expect(page.data.at(-1)?.event_type).toBe('TenantCreated');
    const positions = page.data.map((entry) => BigInt(entry.position));
    expect(positions).toEqual([...positions].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
    expect(new Set(positions).size).toBe(positions.length);
    expect(page.next_cursor).toBeNull();
  });

  it('history --limit beyond a page answers that many entries', async () => {
    const history = await cli(['history', '-t', 'clilists', '--limit', '201', '-o', 'json']);
    expect(history.code, history.stderr).toBe(0);
    expect((JSON.parse(history.stdout) as { data: Entry[] }).data.length).toBe(201);
  });

  it('history --limit says that older entries exist and --cursor shows them', async () => {
    const first = await cli(['history', '-t', 'clilists', '--limit', '2', '-o', 'json']);
    expect(first.code, first.stderr).toBe(0);
    const page = JSON.parse(first.stdout) as { data: Entry[]; next_cursor: string | null };
    expect(page.data.length).toBe(2);
    expect(page.next_cursor).not.toBeNull();
    expect(first.stderr).toContain(`--cursor ${page.next_cursor}`);

    const next = await cli(['history', '-t', 'clilists', '--limit', '2', '--cursor', page.next_cursor ?? '']);
    expect(next.code, next.stderr).toBe(0);
    const last = page.data.at(-1)?.position ?? '0';
    const shown = [...next.stdout.matchAll(/^(\d+)\s/gm)].map((match) => BigInt(match[1] ?? '0'));
    expect(shown.length).toBe(2);
    for (const position of shown) expect(position < BigInt(last)).toBe(true);
  });

  it('get audit --all lists every entry of the tenant; --limit says more exist', async () => {
    const audit = await cli(['get', 'audit', '-t', 'clilists', '--all', '-o', 'json']);
    expect(audit.code, audit.stderr).toBe(0);
    const page = JSON.parse(audit.stdout) as { data: Entry[]; next_cursor: string | null };
    expect(page.data.length).toBeGreaterThanOrEqual(ROUTES + 2);
    expect(page.data.at(-1)?.event_type).toBe('TenantCreated');

    const some = await cli(['get', 'audit', '-t', 'clilists', '--limit', '3']);
    expect(some.code, some.stderr).toBe(0);
    expect(some.stderr).toMatch(/--cursor \d+/);
  });

  it('a --limit that is not a positive whole number is refused with exit 2, naming the flag', async () => {
    const refused = await cli(['history', '-t', 'clilists', '--limit', 'ten']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--limit');
  });
});

describe.concurrent('a document the CLI dumps applies back unchanged', () => {
  it('for every route policy, origin-less routes included, without showing a credential', async () => {
    const tenantId = await createTenant('roundtrip');
    const origin = async (name: string) => {
      const created = await system.admin('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name, url: `http://127.0.0.1:9/${name}` },
      });
      expect(created.status, created.text).toBe(201);
      return created.body['id'] as string;
    };
    const stable = await origin('stable');
    const canary = await origin('canary');
    const routes = [
      {
        path_pattern: '/api/*',
        auth_mode: 'jwt_required',
        cors: { allow_origins: ['https://app.example.com'], allow_headers: ['authorization'] },
      },
      { path_pattern: '/office/*', ip_rules: { deny: ['203.0.113.0/24'] } },
      {
        path_pattern: '/tx/*',
        rewrite_path: { from_prefix: '/tx', to_prefix: '/internal' },
        request_headers: {
          set: { 'x-tenant': '${tenant_id}', authorization: 'Bearer origin-secret-4711' },
          remove: ['x-debug'],
        },
        query: { add: { source: 'gateway' }, remove: ['debug'] },
        response_headers: { set: { 'x-served-by': 'vantageedge' }, remove: ['x-origin'] },
      },
      {
        path_pattern: '/flaky/*',
        retries: { attempts: 3 },
        timeouts: { connect_ms: 200, response_headers_ms: 300 },
      },
      {
        path_pattern: '/canary/*',
        traffic_split: {
          origins: [
            { origin_id: stable, weight: 95 },
            { origin_id: canary, weight: 5 },
          ],
        },
      },
      {
        path_pattern: '/items/*',
        origin_id: canary,
        match: { headers: [{ name: 'x-api-version', exact: '2' }] },
      },
      { path_pattern: '/shop/*', origin_id: null, fixed_response: { status: 503, body: 'maintenance' } },
      {
        path_pattern: '/old/*',
        origin_id: null,
        redirect: { status: 308, location: 'https://new.example.com${path}' },
      },
    ];
    for (const body of routes) {
      const created = await system.admin('POST', '/api/v1/routes', {
        body: { tenant_id: tenantId, origin_id: stable, auth_mode: 'public', ...body },
      });
      expect(created.status, created.text).toBe(201);
    }

    const dump = await cli(['dump', '-t', 'roundtrip']);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).not.toContain('origin-secret-4711');
    const file = path.join(folder, 'roundtrip.yaml');
    await writeFile(file, dump.stdout);
    const diff = await cli(['diff', '-f', file]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    const apply = await cli(['apply', '-f', file]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain('no changes');
    const json = await cli(['dump', '-t', 'roundtrip', '-o', 'json']);
    const jsonFile = path.join(folder, 'roundtrip.json');
    await writeFile(jsonFile, json.stdout);
    expect((await cli(['diff', '-f', jsonFile])).code).toBe(0);

    // Editing a route that answers itself changes what it answers and gives it no origin.
    const edited = parse(dump.stdout) as { routes: Array<Record<string, unknown>> };
    const shop = edited.routes.find((route) => route['path_pattern'] === '/shop/*');
    expect(shop).toBeDefined();
    (shop?.['fixed_response'] as Record<string, unknown>)['body'] = 'back soon';
    await writeFile(file, stringify(edited));
    const changed = await cli(['apply', '-f', file]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toContain('Applied 1 change');
    const after = parse((await cli(['dump', '-t', 'roundtrip'])).stdout) as typeof edited;
    const shopAfter = after.routes.find((route) => route['path_pattern'] === '/shop/*');
    expect(shopAfter?.['origin'] ?? null).toBeNull();
    expect(shopAfter?.['origin_id'] ?? null).toBeNull();
    expect(shopAfter?.['fixed_response']).toMatchObject({ body: 'back soon' });
    expect((await cli(['diff', '-f', file])).code).toBe(0);
  }, 60_000);
});

describe.concurrent('a file that gives a credential value outright', () => {
  it('applied again appends nothing and reports the config version the tenant has', async () => {
    const tenantId = await createTenant('literalcreds');
    const document = {
      format: 1,
      tenant: { id: tenantId, name: 'literalcreds', subdomain: 'literalcreds' },
      origins: [{ name: 'backend', url: 'http://127.0.0.1:9' }],
      routes: [
        {
          origin: 'backend',
          path_pattern: '/billing/*',
          auth_mode: 'public',
          request_headers: { set: { authorization: 'Bearer origin-secret-literal' } },
        },
        { origin: 'backend', path_pattern: '/status', auth_mode: 'public' },
      ],
    };
    const file = path.join(folder, 'literalcreds.yaml');
    await writeFile(file, stringify(document));
    const first = await cli(['apply', '-f', file]);
    expect(first.code, first.stderr).toBe(0);
    const changes = async () => {
      const history = await cli(['history', '-t', 'literalcreds', '--all', '-o', 'json']);
      expect(history.code, history.stderr).toBe(0);
      return (JSON.parse(history.stdout) as { data: Entry[] }).data;
    };
    const before = await changes();

    // The plan lists the stated value as a write (a plan never confirms a guess, see the README), but
    // the value is the stored one: nothing is appended, and the answer names the version the tenant has.
    const again = await cli(['apply', '-f', file, '-o', 'json']);
    expect(again.code, again.stderr).toBe(0);
    const answer = JSON.parse(again.stdout) as { version: string; position: string };
    const after = await changes();
    expect(after).toEqual(before);
    expect(answer.version).toBe(before[0]?.position);
  }, 60_000);
});

describe.concurrent('a file that reads environment variables: ${{ env "VANTAGEEDGE_VAR_…" }}', () => {
  const secrets = {
    VANTAGEEDGE_VAR_ORIGIN_TOKEN: 'origin-secret-from-env',
    VANTAGEEDGE_VAR_REGION: 'eu-west-region-from-env',
    // Quotes, a line break and ": " stay in the value: they do not add keys or routes to the document.
    VANTAGEEDGE_VAR_NOTICE: 'back "soon"\nroutes: []\nauth_mode: jwt_required',
  };
  const withVariables = (variables: Record<string, string>) => (args: string[]) =>
    runVantageedge(args, {
      configFile: path.join(folder, 'config.json'),
      env: { VANTAGEEDGE_URL: system.controlPlaneUrl, ...variables },
    });

  it('applies the values (as strings, ${…} templates untouched); dump and diff do not show a secret', async () => {
    const tenantId = await createTenant('envvars');
    const file = path.join(folder, 'envvars.yaml');
    await writeFile(
      file,
      [
        'format: 1',
        `tenant: { id: ${tenantId}, name: envvars, subdomain: envvars }`,
        'origins:',
        '  - name: backend',
        '    url: http://127.0.0.1:9',
        'routes:',
        '  - origin: backend',
        '    path_pattern: /billing/*',
        '    auth_mode: public',
        '    request_headers:',
        '      set:',
        `        authorization: 'Bearer \${{ env "VANTAGEEDGE_VAR_ORIGIN_TOKEN" }}'`,
        `        x-region: '\${{ env "VANTAGEEDGE_VAR_REGION" }}'`,
        `        x-client: '\${client_ip}'`,
        '  - path_pattern: /notice',
        '    origin_id: null',
        '    auth_mode: public',
        '    fixed_response: { status: 200, body: "${{ env \\"VANTAGEEDGE_VAR_NOTICE\\" }}" }',
        '',
      ].join('\n'),
    );
    const changes = async () => {
      const history = await cli(['history', '-t', 'envvars', '--all', '-o', 'json']);
      expect(history.code, history.stderr).toBe(0);
      return (JSON.parse(history.stdout) as { data: Entry[] }).data;
    };
    const created = await changes();

    // A variable not set, or one without the prefix (here the CLI's own admin token), stops the
    // command before anything is sent, naming the file, the line, the field and the variable.
    const { VANTAGEEDGE_VAR_ORIGIN_TOKEN: _unset, ...someSecrets } = secrets;
    const missing = await withVariables(someSecrets)(['apply', '-f', file]);
    expect(missing.code, missing.stdout + missing.stderr).toBe(2);
    expect(missing.stderr).toContain(
      `${file}, line 12 (routes.0.request_headers.set.authorization): $VANTAGEEDGE_VAR_ORIGIN_TOKEN is not set`,
    );
    const adminToken = await system.token();
    const stealing = path.join(folder, 'envvars-stealing.yaml');
    await writeFile(
      stealing,
      (await readFile(file, 'utf8')).replace('VANTAGEEDGE_VAR_ORIGIN_TOKEN', 'VANTAGEEDGE_TOKEN'),
    );
    const refused = await withVariables({ ...secrets, VANTAGEEDGE_TOKEN: adminToken })([
      'apply',
      '-f',
      stealing,
    ]);
    expect(refused.code, refused.stdout + refused.stderr).toBe(2);
    expect(refused.stderr).toContain('$VANTAGEEDGE_TOKEN may not be read');
    expect(refused.stderr).toContain('line 12 (routes.0.request_headers.set.authorization)');
    expect(refused.stderr + refused.stdout).not.toContain(adminToken);
    expect(await changes()).toEqual(created);

    const applied = await withVariables(secrets)(['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);
    for (const secret of Object.values(secrets)) expect(applied.stdout).not.toContain(secret);

    const dump = await cli(['dump', '-t', 'envvars']);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).not.toContain(secrets.VANTAGEEDGE_VAR_ORIGIN_TOKEN);
    const dumped = parse(dump.stdout) as { routes: Array<Record<string, unknown>> };
    expect(dumped.routes.map((route) => route['path_pattern']).sort()).toEqual(['/billing/*', '/notice']);
    const route = (pattern: string) => dumped.routes.find((each) => each['path_pattern'] === pattern);
    expect(route('/billing/*')?.['request_headers']).toMatchObject({
      set: {
        authorization: '<redacted>',
        'x-region': secrets.VANTAGEEDGE_VAR_REGION,
        'x-client': '${client_ip}',
      },
    });
    expect(route('/notice')?.['auth_mode']).toBe('public');
    expect(route('/notice')?.['fixed_response']).toMatchObject({ body: secrets.VANTAGEEDGE_VAR_NOTICE });

    // Another value for a variable is a difference, shown by the variable's name, not its value.
    const changed = await withVariables({ ...secrets, VANTAGEEDGE_VAR_REGION: 'us-east-region-from-env' })([
      'diff',
      '-f',
      file,
    ]);
    expect(changed.code, changed.stderr).toBe(1);
    expect(changed.stdout).toContain('<$VANTAGEEDGE_VAR_REGION>');
    expect(changed.stdout).not.toContain('us-east-region-from-env');
    expect(changed.stdout).not.toContain(secrets.VANTAGEEDGE_VAR_ORIGIN_TOKEN);
  }, 60_000);

  // A tenant's admin may store any text, `${{ env "…" }}` included: the platform's CI job that applies
  // the dump must write it back as stored, not fill it with a secret of the job's (another tenant's).
  it('dumps stored text that reads as a reference escaped: applied back with the variables set, it stays as stored', async () => {
    const tenantId = await createTenant('envliteral');
    const planted = 'leak: ${{ env "VANTAGEEDGE_VAR_ORIGIN_TOKEN" }}, $${{ env "VANTAGEEDGE_VAR_REGION" }}';
    const route = await system.admin('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: null,
        path_pattern: '/planted',
        auth_mode: 'public',
        fixed_response: { status: 200, body: planted, content_type: 'text/plain' },
      },
    });
    expect(route.status, route.text).toBe(201);
    const dump = await cli(['dump', '-t', 'envliteral']);
    expect(dump.code, dump.stderr).toBe(0);
    const file = path.join(folder, 'envliteral.yaml');
    await writeFile(file, dump.stdout);
    const history = async () => (await cli(['history', '-t', 'envliteral', '--all', '-o', 'json'])).stdout;
    const before = await history();

    const diff = await withVariables(secrets)(['diff', '-f', file]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    const applied = await withVariables(secrets)(['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).not.toContain(secrets.VANTAGEEDGE_VAR_ORIGIN_TOKEN);
    expect(await history()).toBe(before);
  }, 60_000);

  it('masks a value the admin API wrote back lower-cased (a header name of a match condition)', async () => {
    const tenantId = await createTenant('envcase');
    const secret = 'ghp_R8xK2mQ7vL9sT4wZ1nB6';
    const file = path.join(folder, 'envcase.yaml');
    await writeFile(
      file,
      [
        'format: 1',
        `tenant: { id: ${tenantId}, name: envcase, subdomain: envcase }`,
        'routes:',
        '  - path_pattern: /x',
        '    origin_id: null',
        '    auth_mode: public',
        '    fixed_response: { status: 204 }',
        `    match: { headers: [{ name: 'x-\${{ env "VANTAGEEDGE_VAR_HEADER" }}', exact: 'y' }] }`,
        '',
      ].join('\n'),
    );
    for (const output of ['table', 'json']) {
      const diff = await withVariables({ VANTAGEEDGE_VAR_HEADER: secret })([
        '-o',
        output,
        'diff',
        '-f',
        file,
      ]);
      expect(diff.code, diff.stderr).toBe(1);
      if (output === 'json') expect(diff.stdout).toContain('<$VANTAGEEDGE_VAR_HEADER>');
      expect((diff.stdout + diff.stderr).toLowerCase()).not.toContain(secret.toLowerCase());
    }
  }, 60_000);
});

// Alone, after the groups above: it compares whole dumps, whose header gives the event position the
// control plane answered at, which any other group's change moves on.
describe('a file dumped before another change was made', () => {
  it('apply --if-version <the dumped version> refuses it (exit 5, nothing changed); without it the file wins', async () => {
    const tenantId = await createTenant('staledump');
    const origin = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'backend', url: 'http://127.0.0.1:9' },
    });
    expect(origin.status, origin.text).toBe(201);
    const route = await system.admin('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: origin.body['id'],
        path_pattern: '/orders/*',
        auth_mode: 'public',
      },
    });
    expect(route.status, route.text).toBe(201);
    const dump = await cli(['dump', '-t', 'staledump']);
    expect(dump.code, dump.stderr).toBe(0);
    const dumpedVersion = /config version (\d+)/.exec(dump.stdout)?.[1] ?? '';
    const file = path.join(folder, 'staledump.yaml');
    await writeFile(file, dump.stdout);
    const onDumped = await cli(['apply', '-f', file, '--if-version', dumpedVersion, '--dry-run']);
    expect(onDumped.code, onDumped.stderr).toBe(0);

    // Another admin limits the route after the dump.
    const limited = await system.admin('PATCH', `/api/v1/routes/${route.body['id'] as string}`, {
      body: { rate_limit: { requests_per_second: 5 } },
    });
    expect(limited.status, limited.text).toBe(200);
    const limitedDump = (await cli(['dump', '-t', 'staledump'])).stdout;

    for (const dryRun of [['--dry-run'], []]) {
      const refused = await cli(['apply', '-f', file, '--if-version', dumpedVersion, ...dryRun]);
      expect(refused.code, refused.stdout + refused.stderr).toBe(5);
      expect(refused.stderr).toContain(`config version ${dumpedVersion}`);
    }
    expect((await cli(['dump', '-t', 'staledump'])).stdout).toBe(limitedDump);
    const notAVersion = await cli(['apply', '-f', file, '--if-version', 'latest']);
    expect(notAVersion.code).toBe(2);
    expect(notAVersion.stderr).toContain('--if-version');

    // The file is the whole tenant: applied without --if-version, it undoes the change made since.
    const overwritten = await cli(['apply', '-f', file]);
    expect(overwritten.code, overwritten.stderr).toBe(0);
    expect(overwritten.stdout).toContain('rate_limit');
    expect((await cli(['diff', '-f', file])).code).toBe(0);
  }, 60_000);
});
