import { z } from 'zod';

/** Settings of the projectors' metrics listeners (documented in .env.example). */
export const projectorMetricsSettings = {
  /** Address the projectors' /metrics and /healthz listeners bind; 0.0.0.0 so Prometheus can scrape them. */
  PROJECTOR_METRICS_HOST: z.string().min(1).default('0.0.0.0'),
};

/** How the projectors stop (documented in .env.example). */
export const projectorShutdownSettings = {
  /** After SIGTERM: how long the batch in flight may take to commit before the process exits anyway. */
  PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().min(1).max(600).default(30),
};

/**
 * How long after SIGTERM a projector exits whatever its stop is doing (an open batch rolls back as a
 * whole). A supervisor's grace period must be longer (docker-compose.yml).
 */
export function projectorStopDeadlineSeconds(settings: {
  PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS: number;
}): number {
  return settings.PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS;
}
