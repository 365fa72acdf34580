import { eventStoreSettings } from '@vantageedge/shared/event-store/settings';
import { postgresLivenessSettings } from '@vantageedge/shared/postgres/connection-liveness';
import {
  LOCAL_DEFAULTS,
  observabilitySettings,
  port,
  postgresUrl,
} from '@vantageedge/shared/settings/common-settings';
import { z } from 'zod';

/** Settings of the read-model projector and the replay command (documented in .env.example). */
export const readModelSettings = {
  DATABASE_URL: postgresUrl.default(LOCAL_DEFAULTS.DATABASE_URL),
  ...postgresLivenessSettings,
  ...eventStoreSettings,
  /** Most events applied in one transaction (one checkpoint write per batch). */
  READ_MODEL_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  LOG_LEVEL: observabilitySettings.LOG_LEVEL,
};

/** The read-model projector's own settings besides those it shares with replay (documented in .env.example). */
export const readModelProjectorSettings = {
  /** Prometheus /metrics and /healthz of the projector; 0 = off. */
  READ_MODEL_PROJECTOR_METRICS_PORT: port.default(9465),
};
