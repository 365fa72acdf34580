import { urlToHttpOptions } from 'node:url';
import { plainHttpRequest } from '@vantageedge/shared/testing/plain-http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listenOffline } from '../testing/offline-app.js';

/**
 * /openapi.json (over half a megabyte) and the tenant document's JSON Schema are answered to anyone,
 * without a credential or a rate limit. Nothing here connects anywhere.
 */

let app: Awaited<ReturnType<typeof listenOffline>>;
let base: string;

beforeAll(async () => {
  app = await listenOffline();
  base = app.base;
});
afterAll(() => app.close());

function plainGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return plainHttpRequest({ ...urlToHttpOptions(new URL(url)), headers });
}

const DOCUMENTS = [
  ['/openapi.json', 'application/json; charset=utf-8'],
  ['/schemas/tenant-config.json', 'application/schema+json; charset=utf-8'],
] as const;

describe('the public documents', () => {
  it.each(DOCUMENTS)('%s is not serialized again for every anonymous request', async (path, type) => {
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}${path}`)));
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.headers.get('content-type')).toBe(type);
        expect(await answer.json()).toBeTypeOf('object');
      }
      const documentsSerialized = stringify.mock.results.filter(
        (result) => typeof result.value === 'string' && result.value.length > 10_000,
      );
      expect(documentsSerialized).toHaveLength(0);
    } finally {
      stringify.mockRestore();
    }
  });

  it.each(DOCUMENTS)('%s answers a client that has it 304, without the document', async (path) => {
    const first = await fetch(`${base}${path}`);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[^"]+"$/);
    // fetch() would add Cache-Control: no-cache to a conditional request; a browser's revalidation does not.
    const again = await plainGet(`${base}${path}`, { 'if-none-match': etag ?? '' });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });
});
