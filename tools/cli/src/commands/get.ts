import type { CliContext } from '../context.js';
import { CliError, EXIT, type ExitCode } from '../exit-codes.js';
import { type LogEntriesOptions, readLogEntries } from '../log-entries.js';
import { type Column, renderRows } from '../output.js';
import { resolveTenant } from '../tenant-ref.js';

/** get tenants|routes|origins|keys|rollout|audit: the admin API's read side as tables. */

type Row = Record<string, unknown>;
const field =
  (name: string) =>
  (row: Row): unknown =>
    row[name];

interface Listing {
  path: string;
  columns: Array<Column<Row>>;
}

const LISTINGS: Record<string, Listing> = {
  tenants: {
    path: '/api/v1/tenants',
    columns: [
      { header: 'ID', value: field('id') },
      { header: 'NAME', value: field('name') },
      { header: 'SUBDOMAIN', value: field('subdomain') },
      { header: 'CLERK ORG', value: field('clerk_org_id') },
    ],
  },
  origins: {
    path: '/api/v1/origins',
    columns: [
      { header: 'ID', value: field('id') },
      { header: 'NAME', value: field('name') },
      {
        header: 'TARGETS',
        // Weight 0 drains a target: kept in the origin, sent no request.
        value: (row) =>
          ((row['targets'] as Array<{ url: string; weight?: number }> | undefined) ?? []).map((target) =>
            target.weight === 0 ? `${target.url} (drained)` : target.url,
          ),
      },
      {
        header: 'BALANCING',
        value: (row) => (row['load_balancing'] as { algorithm?: string } | null)?.algorithm,
      },
    ],
  },
  routes: {
    path: '/api/v1/routes',
    columns: [
      { header: 'ID', value: field('id') },
      {
        header: 'METHODS',
        value: (row) => ((row['methods'] as string[]).length === 0 ? 'ANY' : row['methods']),
      },
      { header: 'PATH', value: field('path_pattern') },
      { header: 'AUTH', value: field('auth_mode') },
      { header: 'PRIORITY', value: field('priority') },
      {
        header: 'RATE LIMIT',
        value: (row) => {
          const limit = row['rate_limit'] as { requests_per_second: number; scope: string } | null;
          return limit ? `${limit.requests_per_second}/s per ${limit.scope}` : null;
        },
      },
      {
        header: 'CACHE',
        value: (row) => {
          const cache = row['cache_policy'] as { enabled: boolean; ttl_seconds: number } | null;
          return cache?.enabled ? `${cache.ttl_seconds}s` : null;
        },
      },
      { header: 'ORIGIN', value: field('origin_id') },
    ],
  },
  keys: {
    path: '/api/v1/api-keys',
    columns: [
      { header: 'ID', value: field('id') },
      { header: 'NAME', value: field('name') },
      { header: 'PREFIX', value: field('key_prefix') },
      { header: 'SCOPES', value: field('scopes') },
      { header: 'EXPIRES', value: field('expires_at') },
      { header: 'REVOKED', value: field('revoked_at') },
    ],
  },
};
const ALIASES: Record<string, string> = {
  tenant: 'tenants',
  origin: 'origins',
  route: 'routes',
  key: 'keys',
  'api-keys': 'keys',
  'api-key': 'keys',
};
export const GET_RESOURCES = [...Object.keys(LISTINGS), 'rollout', 'audit'];

export async function get(
  ctx: CliContext,
  resource: string,
  id: string | undefined,
  options: { tenant?: string } & LogEntriesOptions,
): Promise<ExitCode> {
  const kind = ALIASES[resource] ?? resource;
  const client = await ctx.client();
  const tenant = options.tenant === undefined ? undefined : await resolveTenant(client, options.tenant);

  if (kind === 'rollout') {
    if (!tenant) throw new CliError(EXIT.usage, 'get rollout needs -t TENANT');
    const rollout = (
      await client.get<{
        target_version: string;
        replicas: Row[];
        publish_error?: string | null;
        quarantined_since?: string | null;
      }>(`/api/v1/tenants/${tenant.id}/rollout`)
    ).body;
    if (rollout.quarantined_since) {
      ctx.stderr(
        `the tenant's event at position ${rollout.quarantined_since} could not be folded into its gateway config: no change from it on reaches a replica (they keep version ${rollout.target_version}) until the snapshots are refolded`,
      );
    }
    if (rollout.publish_error) {
      ctx.stderr(
        `version ${rollout.target_version} was not published (replicas keep the previous one): ${rollout.publish_error}`,
      );
    }
    ctx.stdout(
      renderRows(
        rollout.replicas,
        [
          { header: 'REPLICA', value: field('replica_id') },
          { header: 'APPLIED', value: field('applied_version') },
          { header: 'TARGET', value: () => rollout.target_version },
          { header: 'UP TO DATE', value: (row) => (row['up_to_date'] ? 'yes' : 'no') },
          { header: 'LAST SEEN', value: field('last_seen') },
        ],
        ctx.output,
        rollout,
      ),
    );
    return EXIT.ok;
  }
  if (kind === 'audit') {
    const entries = await readLogEntries<Row>(
      ctx,
      client,
      '/api/v1/audit-log',
      { tenant_id: tenant?.id },
      options,
    );
    ctx.stdout(
      renderRows(
        entries.data,
        [
          { header: 'POSITION', value: field('position') },
          { header: 'TIME', value: field('occurred_at') },
          { header: 'ACTOR', value: field('actor') },
          { header: 'EVENT', value: field('event_type') },
          { header: 'RESOURCE', value: (row) => `${row['resource_type']} ${row['resource_id']}` },
        ],
        ctx.output,
        entries,
      ),
    );
    return EXIT.ok;
  }
  const listing = LISTINGS[kind];
  if (!listing) throw new CliError(EXIT.usage, `get what? one of ${GET_RESOURCES.join(', ')}`);
  if (id !== undefined) {
    const one = (await client.get<Row>(`${listing.path}/${encodeURIComponent(id)}`)).body;
    ctx.stdout(renderRows([one], listing.columns, ctx.output, one));
    return EXIT.ok;
  }
  const rows =
    kind === 'tenants'
      ? (await client.list<Row>(listing.path)).filter((row) => !tenant || row['id'] === tenant.id)
      : await client.list<Row>(listing.path, { tenant_id: tenant?.id });
  ctx.stdout(renderRows(rows, listing.columns, ctx.output));
  return EXIT.ok;
}
