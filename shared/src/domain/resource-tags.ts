import { z } from 'zod';

/**
 * Tags on a tenant's origins, routes and API keys (Kong's `tags`): labels its admins choose, for
 * filtering lists (`?tags=`) and, on origins and routes, for the config document's `select_tags`, with
 * which several teams each manage their own resources of one tenant. A tag is 1–64 printable ASCII characters without space, `,` or `/`
 * (those two separate the tags of a `?tags=` filter); a resource has at most 16, each once.
 * Gateways never read them.
 */

export const MAX_TAGS_PER_RESOURCE = 16;
export const MAX_TAG_CHARS = 64;
/** How many tags one `?tags=` filter names at most (as Kong's). */
export const MAX_FILTER_TAGS = 5;

const TAG_CHARACTERS = /^[\x21-\x2b\x2d\x2e\x30-\x7e]+$/;

export const resourceTag = z
  .string()
  .min(1, { message: 'must not be empty', abort: true })
  .max(MAX_TAG_CHARS, `at most ${MAX_TAG_CHARS} characters`)
  .regex(TAG_CHARACTERS, 'printable ASCII characters only, without space, "," and "/"');

export const resourceTags = z
  .array(resourceTag)
  .max(MAX_TAGS_PER_RESOURCE, `at most ${MAX_TAGS_PER_RESOURCE} tags`)
  .refine((list) => new Set(list).size === list.length, 'must not repeat a tag')
  .meta({
    description: `labels for filtering (?tags=) and select_tags: at most ${MAX_TAGS_PER_RESOURCE}, each 1-${MAX_TAG_CHARS} printable ASCII characters without space, "," and "/"`,
  });

/**
 * As stored in events and snapshots: absent in events recorded before tags existed, and on a snapshot's
 * untagged origins and routes (withoutEmptyTags), which are then what they were before tags: gateways
 * of the release before read them, and a replica keeps nothing for them.
 */
export const storedResourceTags = z.array(z.string()).optional();

/** `item` without its `tags` member when it has none. */
export function withoutEmptyTags<T extends { tags?: readonly string[] | undefined }>(item: T): T {
  if (item.tags === undefined || item.tags.length > 0) return item;
  const { tags: _none, ...untagged } = item;
  return untagged as T;
}

export function hasEveryTag(tags: readonly string[] | undefined, wanted: readonly string[]): boolean {
  return wanted.every((tag) => tags?.includes(tag) === true);
}

/** `tags` with every tag of `added` it lacks appended. */
export function withTags(tags: readonly string[], added: readonly string[]): string[] {
  return [...tags, ...added.filter((tag) => !tags.includes(tag))];
}
