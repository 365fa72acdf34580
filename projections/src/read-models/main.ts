// The read-model projector process (`make run-projector`): follows the event log from its checkpoint
// and keeps read_models.* up to date until SIGINT/SIGTERM.
import 'dotenv/config';
import { loadConfigOrExit } from '@vantageedge/shared/config/load-config';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import { createLogger } from '@vantageedge/shared/observability/logger';
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
logger.info('read-model projector started', { batch_size: config.READ_MODEL_BATCH_SIZE });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('read-model projector stopping', { signal, checkpoint: projector.checkpoint().toString() });
  await projector.stop();
  await store.close();
  await pool.end();
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
await projector.done;
