import { resourceTags } from '@vantageedge/shared/domain/resource-tags';
import { uuidId } from '@vantageedge/shared/domain/uuid-id';
import { z } from 'zod';
import { createOriginBody, createRouteBody, createTenantBody, newOriginRules } from './requests.js';

/**
 * The declarative form of a tenant's configuration: what `vantageedge dump` writes, `diff` and `apply`
 * read, and POST /api/v1/tenants/:id/config/plan and /apply take. Each entry is the body of the create
 * command of its resource (the same schemas, so the same rules), without the tenant (the document is
 * one tenant's) and with an optional `id`:
 *
 * - an entry with an `id` is that resource: updated when it is live, re-created under the same id when
 *   it was deleted; an id the tenant never had is refused;
 * - an origin without `id` is the tenant's live origin of the same `name`, a route without `id` the live
 *   route with the same `path_pattern` and methods; otherwise it is created;
 * - live origins and routes the document does not match are removed.
 *
 * With `select_tags` (decK's), the document is one team's share of the tenant: only the live origins and
 * routes carrying every one of those tags are matched, changed and removed, every resource it lists gets
 * them, and its tenant entry is not applied.
 *
 * A route names its origin by `origin` (the `name` of an origin in the document) or `origin_id`.
 * API keys are not part of the document: their secrets are shown once and never restored.
 */

export const CONFIG_DOCUMENT_FORMAT = 1;

const uuid = uuidId();

const { tenant_id: _originTenant, ...originShape } = createOriginBody.shape;
export const originEntry = z
  .strictObject({ id: uuid.optional(), ...originShape })
  .superRefine(newOriginRules)
  .meta({ description: 'An origin: POST /api/v1/origins without tenant_id, with an optional id' });

const { tenant_id: _routeTenant, origin_id: routeOriginId, ...routeShape } = createRouteBody.shape;
export const routeEntry = z
  .strictObject({
    id: uuid.optional(),
    origin: createOriginBody.shape.name
      .optional()
      .meta({ description: 'the name of an origin of this document' }),
    origin_id: routeOriginId.optional(),
    ...routeShape,
  })
  .superRefine((route, ctx) => {
    if ((route.origin === undefined) === (route.origin_id === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['origin'],
        message: 'give exactly one of origin (a name) or origin_id',
      });
    }
  })
  .meta({ description: 'A route: POST /api/v1/routes without tenant_id, naming its origin' });

const { settings, clerk_org_id, ...tenantShape } = createTenantBody.shape;
export const tenantEntry = z
  .strictObject({
    id: uuid.optional().meta({ description: 'when given, the document applies only to this tenant' }),
    ...tenantShape,
    clerk_org_id: clerk_org_id.meta({ description: 'absent: unchanged' }),
    settings: settings.meta({ description: 'absent: unchanged; {} resets every setting to its default' }),
  })
  .meta({ description: 'The tenant itself (it must exist: apply never creates a tenant)' });

export const configDocument = z
  .strictObject({
    format: z.literal(CONFIG_DOCUMENT_FORMAT).default(CONFIG_DOCUMENT_FORMAT),
    tenant: tenantEntry,
    origins: z.array(originEntry).max(1000).default([]),
    routes: z.array(routeEntry).max(20_000).default([]),
    select_tags: resourceTags.min(1, 'name at least one tag, or leave select_tags out').optional().meta({
      description:
        "decK's select_tags: the document manages only the tenant's origins and routes carrying every one of these tags (it changes and removes no other, and gives them to those it lists); the tenant entry is not applied",
    }),
  })
  .superRefine((document, ctx) => {
    uniqueValues(
      ctx,
      'origins',
      'id',
      document.origins.map((origin) => origin.id),
    );
    uniqueValues(
      ctx,
      'routes',
      'id',
      document.routes.map((route) => route.id),
    );
    const names = document.origins.map((origin) => origin.name);
    document.routes.forEach((route, index) => {
      if (route.origin === undefined) return;
      const count = names.filter((name) => name === route.origin).length;
      if (count !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', index, 'origin'],
          message: count === 0 ? 'names no origin of this document' : 'names several origins: use origin_id',
        });
      }
    });
  })
  .meta({
    title: 'VantageEdge tenant configuration',
    description: 'One tenant: its settings, origins and routes (vantageedge dump / diff / apply)',
  });
export type ConfigDocument = z.infer<typeof configDocument>;
export type OriginEntry = z.infer<typeof originEntry>;
export type RouteEntry = z.infer<typeof routeEntry>;

function uniqueValues(
  ctx: z.RefinementCtx,
  collection: string,
  field: string,
  values: ReadonlyArray<string | undefined>,
): void {
  const seen = new Set<string>();
  values.forEach((value, index) => {
    if (value === undefined) return;
    if (seen.has(value)) {
      ctx.addIssue({
        code: 'custom',
        path: [collection, index, field],
        message: 'appears twice in the document',
      });
    }
    seen.add(value);
  });
}

/**
 * The JSON Schema of the document (editors validate YAML files with it, /schemas/tenant-config.json
 * serves it), with the rules zod checks in code: an origin names its upstream by url or targets, a
 * route its origin by name or id.
 */
export function configDocumentJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configDocument, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, { items?: Record<string, unknown> }>;
  };
  const items = (collection: string) => schema.properties[collection]?.items;
  Object.assign(items('origins') ?? {}, { oneOf: [{ required: ['url'] }, { required: ['targets'] }] });
  Object.assign(items('routes') ?? {}, { oneOf: [{ required: ['origin'] }, { required: ['origin_id'] }] });
  return schema;
}

/** POST /api/v1/tenants/:id/config/rollback */
export const rollbackBody = z.strictObject({
  /** An event position: the config the tenant had right after it is restored. */
  to_position: z
    .union([
      z.string().regex(/^\d{1,19}$/, 'must be an event position (a non-negative integer)'),
      z.number().int('must be an integer').min(0).max(Number.MAX_SAFE_INTEGER),
    ])
    .transform((value) => BigInt(value)),
  /** Only say what would change, or what would refuse the rollback (its steps rehearsed): append nothing. */
  dry_run: z.boolean().default(false),
});
export type RollbackBody = z.infer<typeof rollbackBody>;
