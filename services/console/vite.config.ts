import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The console is a static app the control plane serves at /console (CONSOLE_DIR). `make build` and
 * `make console-build` run this build (scripts/console-build.ts) into dist/console.
 *
 * The route, origin and key forms validate with the control plane's own request schemas
 * (@vantageedge/control-plane/schemas/requests). Some of their checks use Node built-ins; in the
 * browser they get the stand-ins in src/browser-stand-ins (the control plane checks again on write).
 */
const standIn = (name: string) => fileURLToPath(new URL(`./src/browser-stand-ins/${name}`, import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  resolve: {
    alias: [
      { find: /^node:crypto$/, replacement: standIn('crypto.ts') },
      { find: /^node:url$/, replacement: standIn('url.ts') },
      { find: /^node:net$/, replacement: standIn('net.ts') },
    ],
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/console', import.meta.url)),
    emptyOutDir: true,
    // Maps are built, but no bundle names one, and scripts/console-build.ts moves them out of the
    // served folder: the control plane never publishes the console's source (README, Web console).
    sourcemap: 'hidden',
    chunkSizeWarningLimit: 1024,
  },
  server: { port: 42173, strictPort: true },
});
