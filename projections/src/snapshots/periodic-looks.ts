import type { StructuredLogger } from '@vantageedge/shared/observability/logger';

export interface PeriodicLooks {
  /** True once stop() was called: a look whose answer comes after it acts on nothing. */
  readonly stopped: boolean;
  /** Stops the timer and waits for the look under way, if any. */
  stop(): Promise<void>;
}

/**
 * Runs `look` at once and then every `intervalMs`, one at a time (a slow look delays the next rather
 * than overlapping it); a look that fails is logged as `failure` and the next one tried as usual. The
 * timer does not keep the process alive.
 */
export function startPeriodicLooks(options: {
  look: (looks: PeriodicLooks) => Promise<void>;
  intervalMs: number;
  logger: StructuredLogger;
  failure: string;
}): PeriodicLooks {
  let looking: Promise<void> = Promise.resolve();
  const looks = {
    stopped: false,
    async stop() {
      looks.stopped = true;
      clearInterval(timer);
      await looking;
    },
  };
  const tick = (): void => {
    looking = looking
      .then(() => options.look(looks))
      .catch((error: unknown) =>
        options.logger.warn(options.failure, {
          error: error instanceof Error ? error.message : String(error),
        }),
      );
  };
  const timer = setInterval(tick, options.intervalMs);
  timer.unref();
  tick();
  return looks;
}
