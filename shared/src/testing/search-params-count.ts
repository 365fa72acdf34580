import { onTestFinished } from 'vitest';

/**
 * Counts the URLSearchParams made until the running test ends (node's own class is put back then):
 * how a test shows that a query reader does not build one per name or per request.
 */
export function countSearchParamsMade(): { readonly made: number } {
  const NodeSearchParams = globalThis.URLSearchParams;
  const count = { made: 0 };
  globalThis.URLSearchParams = class extends NodeSearchParams {
    constructor(...init: ConstructorParameters<typeof NodeSearchParams>) {
      super(...init);
      count.made++;
    }
  };
  onTestFinished(() => {
    globalThis.URLSearchParams = NodeSearchParams;
  });
  return count;
}
