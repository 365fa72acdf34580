import { createLogger } from '../../observability/logger.js';
import { createMetricsRegistry } from '../../observability/metrics.js';
import { installProcessPolicy } from '../process-policy.js';

/**
 * A stand-in service for process-policy tests: installs the policy like every main does, then does what
 * FIXTURE_SCENARIO asks. Its drain logs when it starts and ends and takes FIXTURE_DRAIN_MS
 * ("never" = hangs). Prints "fixture ready" once the policy is installed.
 */
const logger = createLogger({ service: 'policy-fixture' });
const registry = createMetricsRegistry('policy-fixture', { defaultMetrics: false });
const drainMs = process.env['FIXTURE_DRAIN_MS'] ?? '50';
const keepAlive = setInterval(() => {}, 1_000);

installProcessPolicy({
  service: 'policy-fixture',
  logger,
  registry,
  deadlineMs: Number(process.env['FIXTURE_DEADLINE_MS'] ?? '5000'),
  drain: async (reason) => {
    logger.info('drain started', { reason: reason.kind });
    if (drainMs === 'never') await new Promise(() => {});
    await new Promise((resolve) => setTimeout(resolve, Number(drainMs)));
    clearInterval(keepAlive);
    logger.info('drain finished');
  },
});
logger.info('fixture ready');

const countRejections = async () =>
  (await registry.getSingleMetric('vantageedge_unhandled_rejections_total')?.get())?.values[0]?.value ?? 0;

switch (process.env['FIXTURE_SCENARIO']) {
  case 'reject':
    void Promise.reject(new Error('stray rejection'));
    setTimeout(async () => logger.info('still serving', { rejections: await countRejections() }), 200);
    break;
  case 'throw':
    setTimeout(() => {
      throw new Error('escaped exception');
    }, 50);
    break;
  default:
    break;
}
