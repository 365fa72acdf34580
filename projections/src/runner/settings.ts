import { z } from 'zod';

/** Settings of the projectors' metrics listeners (documented in .env.example). */
export const projectorMetricsSettings = {
  /** Address the projectors' /metrics and /healthz listeners bind; 0.0.0.0 so Prometheus can scrape them. */
  PROJECTOR_METRICS_HOST: z.string().min(1).default('0.0.0.0'),
};
