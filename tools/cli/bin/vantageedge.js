#!/usr/bin/env node
// `npx vantageedge`: the CLI from its TypeScript sources through tsx's loader. The bundle `make build`
// writes (dist/tools/cli/main.js) runs on plain node.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
