import { z } from 'zod';

/**
 * The shapes of the admin API's success answers, as far as the CLI reads them. The client checks every
 * answer it is given a shape for (api-client.ts), so a body of another shape (`null`, a proxy's page,
 * an object where a list is) is reported in one line instead of failing somewhere in a command.
 * Members the CLI does not read are kept as they came (printed with -o json/yaml) and not checked.
 */

const text = z.string();
/**
 * An event position or a config version: a decimal number in a string (they outgrow JS numbers). The
 * CLI prints it as a flag to type next (`--if-version 12`), so anything else is not the admin API's.
 */
const position = z.string().regex(/^\d{1,19}$/, 'must be an event position (a decimal number)');
/** A page cursor: the position of the page's last item, which `--cursor` is then suggested with. */
const cursor = z.string().regex(/^\d{1,19}$/, 'must be a cursor of the admin API (a decimal number)');
/**
 * A field shown in a table cell: any JSON value, present (a bare z.unknown() member of an object is
 * required); `shown.optional()` for one an answer may leave out.
 */
const shown = z.unknown();
/** A table cell's value: printed as `-` when the answer leaves it out, never a reason to refuse the answer. */
const cell = z.unknown().optional();

/**
 * A tenant's subdomain: a DNS label (the admin API's own rule is lower case), which the CLI prints as a
 * flag to type next (`history -t acme`).
 */
const subdomain = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'must be a DNS label');

export const tenantSummary = z.looseObject({ id: text, name: text, subdomain });
export type TenantSummary = z.output<typeof tenantSummary>;

/**
 * A tenant whose entries a page of the audit log left out (its config read budget spent): an id and a
 * count of seconds, nothing a terminal could be made to act on. A malformed list is read as none.
 */
const omittedTenant = z.looseObject({ tenant_id: z.uuid(), retry_after_seconds: z.number().int().min(0) });
export type OmittedTenant = z.output<typeof omittedTenant>;

/** One page of a list: `{ data: [item…], next_cursor }` (and the audit log's `omitted_tenants`). */
export const page = <Item extends z.ZodType>(item: Item) =>
  z.looseObject({
    data: z.array(item),
    next_cursor: cursor.nullish(),
    omitted_tenants: z.array(omittedTenant).optional().catch(undefined),
  });

/** A row of a `get` table: an object whose columns read whatever is there. */
export const tableRow = z.record(z.string(), shown);
export type Row = z.output<typeof tableRow>;

export const routeRow = z.looseObject({
  methods: z.array(z.string()).nullish(),
  rate_limit: z.looseObject({ requests_per_second: cell, scope: cell }).nullish(),
  cache_policy: z.looseObject({ enabled: z.boolean().nullish(), ttl_seconds: cell }).nullish(),
});
export type RouteRow = z.output<typeof routeRow>;

export const originRow = z.looseObject({
  targets: z.array(z.looseObject({ url: shown })).nullish(),
  load_balancing: z.looseObject({ algorithm: cell }).nullish(),
});
export type OriginRow = z.output<typeof originRow>;

export const rolloutAnswer = z.looseObject({
  target_version: shown,
  replicas: z.array(tableRow),
  publish_error: z.string().nullish(),
  quarantined_since: position.nullish(),
  deleted: z.boolean().optional(),
});

export const domainClaim = z.looseObject({ domain: text });

export const configDocumentAnswer = z.looseObject({
  position: position,
  version: position,
  document: shown,
});

const fieldChange = z.looseObject({ field: text, from: shown, to: shown });
const change = z.looseObject({
  resource: text,
  id: z.string().nullable(),
  name: text,
  change: z.enum(['added', 'removed', 'changed', 'restored']),
  fields: z.array(fieldChange),
});

export const planAnswer = z.looseObject({ tenant_id: text, version: position, changes: z.array(change) });
export type PlanAnswer = z.output<typeof planAnswer>;

export const changeAnswer = planAnswer.extend({ position: position });
export const rollbackAnswer = changeAnswer.extend({ to_position: position });

/**
 * A change's answer, or 202 `{ resource, rollout }` when the rollout wait ran out: an answer with a
 * `resource` is always the latter (waitedChange reads either).
 */
export const waited = <Body extends z.ZodType<object>>(body: Body) =>
  z.union([
    z.looseObject({ resource: body, rollout: shown }),
    z.intersection(body, z.looseObject({ resource: z.undefined().optional() })),
  ]);

/** The change of an answer of `waited(…)`. */
export function waitedChange<Body extends object>(answer: Body | { resource: Body }): Body {
  return 'resource' in answer && answer.resource !== undefined ? (answer.resource as Body) : (answer as Body);
}

export const logEntry = z.looseObject({
  position: cell,
  occurred_at: cell,
  actor: cell,
  event_type: cell,
  resource_type: cell,
  resource_id: cell,
  /** Config history entries (…/config/history) have one; audit log entries (/audit-log) do not. */
  summary: cell,
});
