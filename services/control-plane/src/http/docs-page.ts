import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * GET /docs: the API reference rendered from /openapi.json by Scalar's standalone bundle. The bundle is
 * inlined into the page, so the page needs nothing but this service: no CDN, no fonts or telemetry from
 * elsewhere. Scalar is a build-time dependency (its npm package pulls in a whole front-end toolchain):
 * `make build` copies the one file it needs beside the compiled control plane; from source it is read
 * from node_modules.
 */

/** File name of the bundle beside the compiled control plane (scripts/build.ts writes it). */
export const SCALAR_BUNDLE_FILE = 'scalar-api-reference.js';

const SCALAR_CONFIG = {
  url: '/openapi.json',
  withDefaultFonts: false,
  telemetry: false,
  agent: { disabled: true },
  showDeveloperTools: 'never',
  hideDarkModeToggle: false,
};

/** Where Scalar's standalone bundle is in node_modules (development and the build step). */
export function scalarBundleInNodeModules(): string {
  const entry = createRequire(import.meta.url).resolve('@scalar/api-reference');
  return path.join(path.dirname(entry), 'browser', 'standalone.js');
}

function scalarBundle(): string {
  const beside = path.join(path.dirname(fileURLToPath(import.meta.url)), SCALAR_BUNDLE_FILE);
  const bundle = readFileSync(existsSync(beside) ? beside : scalarBundleInNodeModules(), 'utf8');
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
