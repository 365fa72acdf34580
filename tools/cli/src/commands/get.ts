import type { z } from 'zod';
import {
  logEntry,
  type OriginRow,
  originRow,
  type RouteRow,
  type Row,
  rolloutAnswer,
  routeRow,
  tableRow,
} from '../answer-shapes.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT, type ExitCode } from '../exit-codes.js';
import { type LogEntriesOptions, readLogEntries } from '../log-entries.js';
import { type Column, renderRows } from '../output.js';
import { resolveTenant } from '../tenant-ref.js';

/** get tenants|routes|origins|keys|rollout|audit: the admin API's read side as tables. */

const field =
  (name: string) =>
  (row: Row): unknown =>
    row[name];

interface Listing {
  path: string;
  /** What each of its items must look like for the columns to read it. */
  item: z.ZodType<Row>;
  columns: Array<Column<Row>>;
}

const LISTINGS: Record<string, Listing> = {
  tenants: {
    path: '/api/v1/tenants',
    item: tableRow,
    columns: [
      { header: 'ID', value: field('id') },
      { header: 'NAME', value: field('name') },
      { header: 'SUBDOMAIN', value: field('subdomain') },
      { header: 'CLERK ORG', value: field('clerk_org_id') },
    ],
  },
  origins: {
    path: '/api/v1/origins',
    item: originRow,
    columns: [
      { header: 'ID', value: field('id') },
      { header: 'NAME', value: field('name') },
      {
        header: 'TARGETS',
        // Weight 0 drains a target: kept in the origin, sent no request.
        value: (origin) =>
          ((origin as OriginRow).targets ?? []).map((target) =>
            target.weight === 0 ? `${target.url} (drained)` : target.url,
          ),
      },
      {
        header: 'BALANCING',
        value: (origin) => (origin as OriginRow).load_balancing?.algorithm,
      },
    ],
  },
  routes: {
    path: '/api/v1/routes',
    item: routeRow,
    columns: [
      { header: 'ID', value: field('id') },
      {
        header: 'METHODS',
        value: (route) => {
          const methods = (route as RouteRow).methods ?? [];
          return methods.length === 0 ? 'ANY' : methods;
        },
      },
      { header: 'PATH', value: field('path_pattern') },
      { header: 'AUTH', value: field('auth_mode') },
      { header: 'PRIORITY', value: field('priority') },
      {
        header: 'RATE LIMIT',
        value: (route) => {
          const limit = (route as RouteRow).rate_limit;
          return limit ? `${limit.requests_per_second}/s per ${limit.scope}` : null;
        },
      },
      {
        header: 'CACHE',
        value: (route) => {
          const cache = (route as RouteRow).cache_policy;
          return cache?.enabled ? `${cache.ttl_seconds}s` : null;
        },
      },
      { header: 'ORIGIN', value: field('origin_id') },
    ],
  },
  keys: {
    path: '/api/v1/api-keys',
    item: tableRow,
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
    const rollout = (await client.get(`/api/v1/tenants/${tenant.id}/rollout`, rolloutAnswer)).body;
    if (rollout.quarantined_since) {
      ctx.stderr(
        rollout.deleted
          ? `the tenant's event at position ${rollout.quarantined_since} could not be folded into its gateway config: no replica serves the tenant until the snapshots are refolded with a fold that takes it`
          : `the tenant's event at position ${rollout.quarantined_since} could not be folded into its gateway config: no change from it on reaches a replica (they keep version ${rollout.target_version}) until the snapshots are refolded`,
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
    const entries = await readLogEntries(
      ctx,
      client,
      '/api/v1/audit-log',
      logEntry,
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
    const one = (await client.get(`${listing.path}/${encodeURIComponent(id)}`, listing.item)).body;
    ctx.stdout(renderRows([one], listing.columns, ctx.output, one));
    return EXIT.ok;
  }
  const rows =
    kind === 'tenants'
      ? (await client.list(listing.path, listing.item)).filter((one) => !tenant || one['id'] === tenant.id)
      : await client.list(listing.path, listing.item, { tenant_id: tenant?.id });
  ctx.stdout(renderRows(rows, listing.columns, ctx.output));
  return EXIT.ok;
}
