import { hasEveryTag } from '@vantageedge/shared/domain/resource-tags';
import { CONFIG_DOCUMENT_FORMAT } from '../schemas/config-document.js';
import type { TenantConfig } from './tenant-config.js';

/**
 * A config as a document (what `vantageedge dump` writes): every resource with its id, so applying
 * the document to the tenant changes nothing, and applying it later brings every listed resource back
 * as it was. Routes name their origin by name when that name is unique in the tenant (readable,
 * editable), else by id. Not validated here: a config recorded under older rules may not pass
 * today's document schema, which whoever applies it checks.
 */
/** A document as JSON, not yet checked against the document schema. */
export interface UncheckedDocument {
  format: number;
  tenant: object;
  origins: object[];
  routes: object[];
  select_tags?: string[];
}

/**
 * `selectTags`: one team's share (decK's select_tags): the origins and routes carrying every one of
 * those tags, and `select_tags` naming them. A route of the share pointing at an origin outside it
 * names it by id.
 */
export function documentOf(
  config: TenantConfig,
  { originNames = true, selectTags = [] as readonly string[] } = {},
): UncheckedDocument {
  const selected = <T extends { tags?: readonly string[] | undefined }>(items: T[]): T[] =>
    selectTags.length === 0 ? items : items.filter((item) => hasEveryTag(item.tags, selectTags));
  const origins = selected(config.origins);
  const nameCounts = new Map<string, number>();
  for (const origin of origins) nameCounts.set(origin.name, (nameCounts.get(origin.name) ?? 0) + 1);
  const originName = new Map(origins.map((origin) => [origin.id, origin.name]));
  const { id: tenantId, name, subdomain, clerk_org_id, settings } = config.tenant;
  return {
    format: CONFIG_DOCUMENT_FORMAT,
    ...(selectTags.length === 0
      ? { tenant: { id: tenantId, name, subdomain, clerk_org_id, settings } }
      : { select_tags: [...selectTags], tenant: { id: tenantId, name, subdomain } }),
    origins,
    routes: selected(config.routes).map(({ origin_id, ...route }) => {
      const name = origin_id === null ? undefined : originName.get(origin_id);
      return originNames && name !== undefined && nameCounts.get(name) === 1
        ? { ...route, origin: name }
        : { ...route, origin_id };
    }),
  };
}
