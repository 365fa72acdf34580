import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'winston';

/**
 * What every VantageEdge service process does when it is told to stop or when something escapes its
 * own error handling:
 *
 * - SIGTERM / SIGINT: `drain` (stop taking work, finish what is in flight), then exit 0. A second signal
 *   exits at once (code 1). A drain that has not settled after `deadlineMs` is cut short: exit 0 anyway.
 * - An unhandled promise rejection: logged with its stack, counted in
 *   `vantageedge_unhandled_rejections_total`, and the process keeps serving. One stray rejection must
 *   not take down every tenant a replica serves.
 * - An uncaught exception: logged, then `drain` (told that it is fatal, so it can skip grace periods
 *   meant for load balancers), then exit 1 so the supervisor restarts a process whose state can no
 *   longer be trusted. Another exception while draining exits 1 at once.
 */
export type StopReason =
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals }
  | { readonly kind: 'fatal'; readonly error: unknown };

export interface ProcessPolicyOptions {
  service: string;
  logger: Logger;
  /** Where the unhandled-rejection counter goes (the service's /metrics registry), if it has one. */
  registry?: Registry | undefined;
  /** Stops taking work and finishes what is in flight; the service's own phases and deadlines. */
  drain: (reason: StopReason) => Promise<void>;
  /** Backstop: the process exits this long after the stop began, whatever `drain` is doing. */
  deadlineMs: number;
  /** Seams for tests; the real process by default. */
  process?: PolicyProcess;
  exit?: (code: number) => void;
}

/** The part of `process` the policy uses. */
export interface PolicyProcess {
  on(event: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (error: Error, origin: string) => void): unknown;
}

export interface ProcessPolicy {
  /** True once a stop has begun (signal or fatal error). */
  readonly stopping: boolean;
  /** Begins the same stop a signal begins (e.g. when a service's main loop ends by itself). */
  stop(reason: StopReason): Promise<void>;
}

function describe(error: unknown): Record<string, unknown> {
  if (error instanceof Error) return { error: error.message, error_name: error.name, stack: error.stack };
  return { error: String(error) };
}

/** The longest the process waits for its log lines to be written before it exits (after `deadlineMs` too). */
export const EXIT_LOG_FLUSH_MS = 1_000;

/** Waits until the logger has handed every line to its transports (bounded), so exit loses nothing. */
function flushLogger(logger: Logger, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    logger.once('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    logger.end();
  });
}

export function installProcessPolicy(options: ProcessPolicyOptions): ProcessPolicy {
  const { service, logger } = options;
  const target = options.process ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const rejections = options.registry
    ? new Counter({
        name: 'vantageedge_unhandled_rejections_total',
        help: 'Promise rejections nobody handled (logged; the process kept serving)',
        registers: [options.registry],
      })
    : undefined;

  let stopping: Promise<void> | undefined;
  let exiting = false;
  // Once the logger is being flushed for exit, a late line would be a write after end.
  const log = (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => {
    if (!exiting) logger.log(level, message, { service, ...fields });
  };
  const exitOnce = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await flushLogger(logger, EXIT_LOG_FLUSH_MS);
    exit(code);
  };

  const stop = (reason: StopReason): Promise<void> => {
    stopping ??= (async () => {
      const code = reason.kind === 'fatal' ? 1 : 0;
      const backstop = setTimeout(() => {
        log('warn', 'shutdown deadline reached; exiting with work still in flight', {
          deadline_ms: options.deadlineMs,
        });
        void exitOnce(code);
      }, options.deadlineMs);
      backstop.unref();
      try {
        await options.drain(reason);
      } catch (error) {
        log('error', 'shutdown did not complete cleanly', describe(error));
      } finally {
        clearTimeout(backstop);
      }
      log('info', 'stopped', { exit_code: code });
      await exitOnce(code);
    })();
    return stopping;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log('warn', 'second signal while stopping; exiting now', { signal });
      void exitOnce(1);
      return;
    }
    log('info', 'stopping', { signal });
    void stop({ kind: 'signal', signal });
  };
  target.on('SIGTERM', onSignal);
  target.on('SIGINT', onSignal);

  target.on('unhandledRejection', (reason: unknown) => {
    rejections?.inc();
    log('error', 'unhandled promise rejection; still serving', describe(reason));
  });

  target.on('uncaughtException', (error: Error, origin: string) => {
    log('error', 'uncaught exception; draining and exiting', { origin, ...describe(error) });
    if (stopping) {
      void exitOnce(1);
      return;
    }
    void stop({ kind: 'fatal', error });
  });

  return {
    get stopping() {
      return stopping !== undefined;
    },
    stop,
  };
}
