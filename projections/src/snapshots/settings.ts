import { port } from '@vantageedge/shared/settings/common-settings';
import { z } from 'zod';
import { DEFAULT_TENANT_PUBLISH_BYTES_PER_SECOND } from './publish-pacing.js';

/** The snapshot projector's own settings (documented in .env.example). */
export const snapshotProjectorSettings = {
  /** Prometheus /metrics and /healthz of the projector; 0 = off. */
  SNAPSHOT_PROJECTOR_METRICS_PORT: port.default(9464),
  SNAPSHOT_PROJECTOR_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Pacing of each tenant's publications: bytes of snapshot JSON per second; 0 = off. */
  SNAPSHOT_TENANT_PUBLISH_BYTES_PER_SECOND: z.coerce
    .number()
    .int()
    .min(0)
    .default(DEFAULT_TENANT_PUBLISH_BYTES_PER_SECOND),
};

/** `make republish-snapshots`' own settings (documented in .env.example). */
export const republishSettings = {
  REPUBLISH_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(3600).default(120),
};
