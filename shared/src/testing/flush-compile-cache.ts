import { flushCompileCache } from 'node:module';
import { afterAll } from 'vitest';

// Node writes its compile cache (NODE_COMPILE_CACHE, set in vitest.config.ts) when a process exits
// normally, and vitest ends each test file's worker without one: written here, once the file's
// dependencies are loaded, so the next files' workers start from it.
afterAll(() => flushCompileCache());
