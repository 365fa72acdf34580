import { expect } from 'vitest';
import { type ControlPlaneHarness, json } from './control-plane-harness.js';

/** A request the admin API must refuse: its method, path, body, and the field the refusal names. */
export type RefusedCommand = readonly [method: string, path: string, body: unknown, field: string];

/**
 * Each request is answered 400 validation_failed naming its field, and none of them appends an event:
 * the resources stay as they were.
 */
export async function expectRefusedNamingField(
  h: ControlPlaneHarness,
  refused: readonly RefusedCommand[],
): Promise<void> {
  const before = await h.store.headPosition();
  for (const [method, path, body, field] of refused) {
    const response = await h.request(method, path, { body });
    expect(response.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
    expect(json(response)['error']).toMatchObject({
      code: 'validation_failed',
      details: [expect.objectContaining({ field })],
    });
  }
  expect(await h.store.headPosition()).toBe(before);
}

/** `?tags=` filters no list reads: `,` and `/` mixed, an empty tag, over 5 tags, a tag with a space. */
const UNREADABLE_TAG_FILTERS = ['tags=a,b/c', 'tags=a,,b', 'tags=a,b,c,d,e,f', 'tags=a%20b'];

/** Each unreadable `?tags=` filter on the list `path` (which has a query already) is refused 400, naming `tags`. */
export async function expectTagFiltersRefused(h: ControlPlaneHarness, path: string): Promise<void> {
  for (const query of UNREADABLE_TAG_FILTERS) {
    const response = await h.request('GET', `${path}&${query}`);
    expect(response.status, query).toBe(400);
    expect(json(response)['error']).toMatchObject({
      details: [expect.objectContaining({ field: 'tags' })],
    });
  }
}
