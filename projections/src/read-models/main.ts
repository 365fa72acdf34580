// The read-model projector process (`make run-projector`): follows the event log from its checkpoint
// and keeps read_models.* up to date until SIGINT/SIGTERM.
import 'dotenv/config';
import { loadConfigOrExit } from '@vantageedge/shared/config/load-config';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import pg from 'pg';
import { readModelSettings } from './config.js';
import { startReadModelProjector } from './projector.js';

const config = loadConfigOrExit('read-model-projector', readModelSettings);
const logger = createLogger({ service: 'read-model-projector', level: config.LOG_LEVEL });
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 4 });
const store = createEventStore(eventStoreConfigFromSettings(config, { pool }));

const projector = startReadModelProjector({
  store,
  pool,
  batchSize: config.READ_MODEL_BATCH_SIZE,
  logger,
  onCommitted: (checkpoint, events) =>
    logger.debug('batch committed', { checkpoint: checkpoint.toString(), events }),
});
installProcessPolicy({
  service: 'read-model-projector',
  logger,
  // A batch commits or rolls back as a whole, so even a stop cut short leaves the checkpoint consistent.
  deadlineMs: config.PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS * 1000,
  drain: async () => {
    await projector.stop(); // the batch in flight commits (with its checkpoint) first
    logger.info('read-model projector stopped', { checkpoint: projector.checkpoint().toString() });
    await store.close();
    await pool.end();
  },
});
logger.info('read-model projector started', { batch_size: config.READ_MODEL_BATCH_SIZE });
await projector.done;
