import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { INTEGRATION_FILES_ISOLATED, UNIT_FILES_ISOLATED } from './scripts/isolated-test-files.js';

// Every test worker (and every file of the isolated projects) is a fresh process that would otherwise
// compile the same dependencies (vitest, chai, zod, pg, kafkajs…) again: Node's on-disk compile cache
// lets each reuse the first one's work, as do the services the integration tests start.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
process.env.NODE_COMPILE_CACHE ||= fileURLToPath(new URL('.data/node-compile-cache', import.meta.url));

// Test layers are selected by file name, as in Emmett:
//   *.unit.test.ts  pure, no servers
//   *.int.test.ts   needs the real local infrastructure (make infra-up)
//   *.e2e.test.ts   whole processes talking over the network
//   *.faults.test.ts  the fault suite (make test-faults): private servers killed and restarted under load
//   *.cluster.test.ts  Redis Cluster and three-broker Kafka (make test-cluster), one file at a time
// The servers are checked first; then every service is compiled once for the processes the
// integration tests start (scripts/test-service-bundle.ts; both integration projects share it).
const INTEGRATION_GLOBAL_SETUP = ['shared/src/testing/global-setup.ts', 'scripts/test-service-bundle.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration suites share one PostgreSQL/Redis/Kafka; each creates its own database, key prefix
    // or topic, so files may run in parallel, but 2 cores are all we have (the integration projects
    // use one more worker: see there).
    maxWorkers: 2,
    setupFiles: ['shared/src/testing/flush-compile-cache.ts'],
    projects: [
      // Unit files share one module cache per worker (no isolation): importing the modules again for each
      // file was most of the project's time. The files that replace modules (vi.mock), swap process-wide
      // state (OpenTelemetry's global providers) or listen for every unhandled rejection run isolated.
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['**/*.unit.test.ts'],
          exclude: ['node_modules/**', ...UNIT_FILES_ISOLATED],
          isolate: false,
        },
      },
      { extends: true, test: { name: 'unit-isolated', include: [...UNIT_FILES_ISOLATED] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts', '**/*.e2e.test.ts'],
          exclude: ['node_modules/**', ...INTEGRATION_FILES_ISOLATED],
          // As for the unit files, one module cache per worker: ≈ 55 s of imports a run instead of ≈ 680 s.
          // The files that replace modules, register OpenTelemetry's global provider, listen for every
          // unhandled error or stub the environment run isolated (integration-isolated).
          isolate: false,
          // These files wait on servers, processes and timers more than they compute: with two workers
          // the 2 cores stood idle a third to 43% of the run. A group of its own, after the unit files,
          // as vitest runs projects of different worker counts.
          maxWorkers: 3,
          sequence: { groupOrder: 1 },
          globalSetup: INTEGRATION_GLOBAL_SETUP,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration-isolated',
          include: [...INTEGRATION_FILES_ISOLATED],
          maxWorkers: 3,
          sequence: { groupOrder: 1 },
          globalSetup: INTEGRATION_GLOBAL_SETUP,
        },
      },
      // `make test-cluster` (part of `make test`): its global setup starts both clusters through infra/.
      // Files run one at a time: some kill a Redis master or a Kafka broker and restore it before ending.
      {
        extends: true,
        test: {
          name: 'cluster',
          include: ['**/*.cluster.test.ts'],
          exclude: ['node_modules/**'],
          globalSetup: ['shared/src/testing/cluster-global-setup.ts'],
          fileParallelism: false,
        },
      },
      // Only `make test-faults` (the last step of `make test`) runs it: it starts its own servers.
      {
        extends: true,
        test: { name: 'faults', include: ['e2e/faults/**/*.faults.test.ts'], exclude: ['node_modules/**'] },
      },
    ],
  },
});
