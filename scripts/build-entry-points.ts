/**
 * What `make build` emits: file under dist/ (without .js) → source entry point. The container image,
 * docker-compose.yml and docs/deployment.md use these paths.
 */
export const BUILD_ENTRY_POINTS: Readonly<Record<string, string>> = {
  'services/gateway/main': 'services/gateway/src/main.ts',
  'services/control-plane/main': 'services/control-plane/src/main.ts',
  'projections/snapshots/main': 'projections/src/snapshots/main.ts',
  'projections/snapshots/republish-cli': 'projections/src/snapshots/republish-cli.ts',
  'projections/read-models/main': 'projections/src/read-models/main.ts',
  'projections/read-models/replay-cli': 'projections/src/read-models/replay-cli.ts',
  'migrations/cli': 'migrations/src/cli.ts',
  // The admin CLI: `node dist/tools/cli/main.js` where the TypeScript sources are not installed.
  'tools/cli/main': 'tools/cli/src/main.ts',
};
