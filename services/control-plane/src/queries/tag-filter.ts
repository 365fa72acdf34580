import { MAX_FILTER_TAGS, resourceTag, resourceTags } from '@vantageedge/shared/domain/resource-tags';
import { z } from 'zod';

/**
 * `?tags=` of a list of origins, routes or API keys, as Kong's Admin API reads it: `a,b` lists the resources
 * carrying every one of the tags, `a/b` those carrying any of them; one operator per filter.
 */
export type TagFilter = { every: string[] } | { any: string[] };

export const tagFilterParam = z
  .string()
  .transform((value, ctx): TagFilter => {
    const hasAnd = value.includes(',');
    const hasOr = value.includes('/');
    if (hasAnd && hasOr) {
      ctx.addIssue({ code: 'custom', message: 'use either "," (all of) or "/" (any of), not both' });
      return z.NEVER;
    }
    const tags = value.split(hasOr ? '/' : ',');
    if (tags.length > MAX_FILTER_TAGS) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_FILTER_TAGS} tags` });
      return z.NEVER;
    }
    for (const tag of tags) {
      const checked = resourceTag.safeParse(tag);
      if (!checked.success) {
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(tag)}: ${checked.error.issues[0]?.message}`,
        });
        return z.NEVER;
      }
    }
    return hasOr ? { any: tags } : { every: tags };
  })
  .optional()
  .meta({
    description: `origins, routes and API keys: those carrying every tag of a,b or any tag of a/b (at most ${MAX_FILTER_TAGS})`,
  });

/** The SQL condition on the row `r`'s tags, its parameter at `$index`. */
export function tagCondition(filter: TagFilter, index: number): { sql: string; value: string | string[] } {
  return 'every' in filter
    ? { sql: `r.tags @> $${index}::jsonb`, value: JSON.stringify(filter.every) }
    : { sql: `r.tags ?| $${index}::text[]`, value: filter.any };
}

/** `?select_tags=a,b` of a config document: the share of the tenant carrying every one of those tags. */
export const selectTagsParam = z
  .string()
  .transform((value, ctx) => {
    const checked = resourceTags.safeParse(value.split(','));
    if (checked.success) return checked.data;
    for (const issue of checked.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
    return z.NEVER;
  })
  .optional()
  .meta({
    description:
      'only the origins and routes carrying every one of these tags (a,b), as a select_tags document',
  });
