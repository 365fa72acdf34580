// The test files vitest runs each in a fresh module graph. The unit and integration projects otherwise
// share one module cache per worker (vitest.config.ts), so a file that replaces a module, swaps
// process-wide state or listens for every unhandled error would reach the files after it in its worker.
// isolated-test-files.unit.test.ts finds such files by what they call and checks that they are listed.

/** Unit files that must not share modules with the others (see the unit project). */
export const UNIT_FILES_ISOLATED = [
  'services/console/src/browser-stand-ins/crypto.unit.test.ts',
  'services/control-plane/src/http/request-tracing.unit.test.ts',
  'services/gateway/src/auth/api-key-digest-churn.unit.test.ts',
  'services/gateway/src/config-plane/snapshot-file-pacing.unit.test.ts',
  'services/gateway/src/cors/cors-stage.unit.test.ts',
  'services/gateway/src/observability/request-tracing-memory.unit.test.ts',
  'shared/src/event-store/factory.unit.test.ts',
  'shared/src/gateway-policies/address-matcher.unit.test.ts',
  'shared/src/observability/http-server-span.unit.test.ts',
  'shared/src/observability/telemetry.unit.test.ts',
  'shared/src/redis/subscriber-resubscribe.unit.test.ts',
  'shared/src/routing/match-conditions.unit.test.ts',
];

/** Integration files that must not share modules with the others (see the integration project). */
export const INTEGRATION_FILES_ISOLATED = [
  // replace modules
  'services/control-plane/src/commands/snapshot-guard-cost.int.test.ts',
  'services/control-plane/src/commands/snapshot-guard-gzip-budget.int.test.ts',
  'services/gateway/src/proxy/request-loops.int.test.ts',
  'services/gateway/src/tls/cross-name-resumption.int.test.ts',
  'services/gateway/src/upstream/dns-lookups.int.test.ts',
  'services/gateway/src/websocket/websocket-dns-lookups.int.test.ts',
  // register OpenTelemetry's global tracer provider, which a provider's shutdown does not unregister
  'projections/src/read-models/projector-observability.int.test.ts',
  'projections/src/snapshots/snapshot-tracing.int.test.ts',
  'services/gateway/src/observability/planted-secrets.int.test.ts',
  'services/gateway/src/observability/request-tracing-sampling.int.test.ts',
  'services/gateway/src/observability/request-tracing.int.test.ts',
  'services/gateway/src/websocket/websocket-tracing.int.test.ts',
  'shared/src/observability/telemetry-otlp.int.test.ts',
  'shared/src/postgres/statement-spans.int.test.ts',
  'shared/src/redis/command-spans.int.test.ts',
  // listen for every unhandled rejection, uncaught exception or process warning
  'services/gateway/src/replica-robustness.int.test.ts',
  'services/gateway/src/websocket/websocket-http2.int.test.ts',
  'services/gateway/src/websocket/websocket-pipelined-upgrade.int.test.ts',
  'shared/src/postgres/lost-connections.int.test.ts',
  // set process environment variables
  'services/control-plane/src/auth/machine-tokens.int.test.ts',
];
