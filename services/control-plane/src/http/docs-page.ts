import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * GET /docs: the API reference rendered from /openapi.json by Scalar's standalone bundle
 * (@scalar/api-reference, from node_modules). The bundle is inlined into the page, so the page needs
 * nothing but this service: no CDN, no fonts or telemetry from elsewhere.
 */

const SCALAR_CONFIG = {
  url: '/openapi.json',
  withDefaultFonts: false,
  telemetry: false,
  agent: { disabled: true },
  showDeveloperTools: 'never',
  hideDarkModeToggle: false,
};

function scalarBundle(): string {
  const entry = createRequire(import.meta.url).resolve('@scalar/api-reference');
  const bundle = readFileSync(path.join(path.dirname(entry), 'browser', 'standalone.js'), 'utf8');
  // Inline in a <script> element: a literal "</script" inside it would end the element early.
  return bundle.replaceAll('</script', '<\\/script');
}

let page: string | undefined;

/** Built on first use (the bundle is a few MB) and kept. */
export function docsPage(): string {
  page ??= `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>VantageEdge control plane API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><noscript>The API reference needs JavaScript; the document itself is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</noscript>
<div id="app"></div>
<script>${scalarBundle()}</script>
<script>Scalar.createApiReference('#app', ${JSON.stringify(SCALAR_CONFIG)});</script>
</body></html>`;
  return page;
}
