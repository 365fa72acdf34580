import { normalizePath } from '@vantageedge/shared/routing/normalize-path';
import { compilePattern } from '@vantageedge/shared/routing/route-matcher';

/**
 * Whether some request path the route pattern matches starts with `prefix` as whole segments, both read
 * as the gateway reads them: normalised (`%7E` is `~`), letters compared as written (a path reaching the
 * route only through its case-folded reading is refused before any rewrite), a `:param` taking any
 * segment and a trailing `*` any rest. A prefix of no segment (`/`) starts every path. A prefix or
 * pattern the gateway cannot read is not judged here (its own field's rule refuses it).
 */
export function patternPathsCanStartWith(pattern: string, prefix: string): boolean {
  const normalized = normalizePath(prefix, 'keep');
  if (!normalized.ok) return true;
  const wanted = normalized.path.split('/').filter((segment) => segment !== '');
  let segments: ReturnType<typeof compilePattern>;
  try {
    segments = compilePattern('', pattern);
  } catch {
    return true;
  }
  for (const [index, segment] of wanted.entries()) {
    const expected = segments[index];
    if (expected === undefined) return false;
    switch (expected.kind) {
      case 'wildcard':
        return true;
      case 'prefix':
        return segment.startsWith(expected.value);
      case 'literal':
        if (segment !== expected.value) return false;
        break;
      case 'param':
        break;
    }
  }
  return true;
}
