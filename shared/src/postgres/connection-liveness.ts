import pg from 'pg';
import { z } from 'zod';
import { clientWithStatementSpans, PoolKeepingCallerContext } from './statement-spans.js';

/**
 * Connections that die without a word (no FIN, no RST: the server's host vanished, a NAT or firewall
 * forgot the flow). Nothing tells the client: an idle pooled connection that died is found only when a
 * statement is sent on it, and a statement sent on one waits for the kernel's retransmission timeout
 * (about 15 minutes on Linux) — a projector stops, a command hangs, holding a connection all along.
 *
 * - TCP keepalive on every connection: idle for `keepAliveIdleMs`, the kernel probes it every second
 *   and closes it after 10 unanswered probes (libuv's interval and count on Linux, node 24), so a
 *   dead idle connection — a pooled one, the event store's LISTEN connection — is found within
 *   `keepAliveIdleMs` + 10 s and replaced. Keepalive is not sent while a statement's bytes wait for
 *   their acknowledgement, so:
 * - every statement has `statementDeadlineMs` to be answered; past it its connection is closed (never
 *   handed out again) and the statement fails with a StatementDeadlineError (a connection error:
 *   `isConnectionError`, `isTransientError`). node-postgres' own `query_timeout` only rejects the
 *   statement: the connection stays open, busy with the unanswered one, and a transaction's `rollback`
 *   queues behind it.
 */

/** Default POSTGRES_KEEPALIVE_IDLE_MS. */
export const DEFAULT_KEEPALIVE_IDLE_MS = 10_000;

/**
 * Default POSTGRES_STATEMENT_DEADLINE_MS: above the longest wait a statement has on purpose (a tenant's
 * config change waits up to 30 s for the one before it), so only a connection that stopped answering
 * meets it.
 */
export const DEFAULT_STATEMENT_DEADLINE_MS = 45_000;

/** Settings of every service's and command's PostgreSQL connections (documented in .env.example). */
export const postgresLivenessSettings = {
  /** Idle this long (ms), a connection is probed by TCP keepalive; libuv takes whole seconds. */
  POSTGRES_KEEPALIVE_IDLE_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(7_200_000)
    .default(DEFAULT_KEEPALIVE_IDLE_MS),
  /** How long a statement may go unanswered before its connection is closed (ms); 0: no limit. */
  POSTGRES_STATEMENT_DEADLINE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(DEFAULT_STATEMENT_DEADLINE_MS),
};

export interface ConnectionLiveness {
  keepAliveIdleMs: number;
  /** 0: no deadline. */
  statementDeadlineMs: number;
}

export function livenessFromSettings(settings: {
  POSTGRES_KEEPALIVE_IDLE_MS: number;
  POSTGRES_STATEMENT_DEADLINE_MS: number;
}): ConnectionLiveness {
  return {
    keepAliveIdleMs: settings.POSTGRES_KEEPALIVE_IDLE_MS,
    statementDeadlineMs: settings.POSTGRES_STATEMENT_DEADLINE_MS,
  };
}

const DEFAULT_LIVENESS: ConnectionLiveness = {
  keepAliveIdleMs: DEFAULT_KEEPALIVE_IDLE_MS,
  statementDeadlineMs: DEFAULT_STATEMENT_DEADLINE_MS,
};

/**
 * A pool whose connections are kept alive and whose statements have a deadline (`liveness`, default
 * the settings' defaults), each a CLIENT span under the active span when tracing is on
 * (statement-spans.ts). Unless `config` says otherwise, a new connection too has the statement deadline
 * to connect, and a checkout as long to get one: a handshake through a dead route would otherwise wait
 * as long as a statement on a dead connection.
 */
export function createLivePool(config: pg.PoolConfig, liveness: Partial<ConnectionLiveness> = {}): pg.Pool {
  const { keepAliveIdleMs, statementDeadlineMs } = { ...DEFAULT_LIVENESS, ...liveness };
  return new PoolKeepingCallerContext({
    Client: clientWithStatementSpans(
      statementDeadlineMs > 0 ? clientWithStatementDeadline(statementDeadlineMs) : pg.Client,
    ),
    ...(statementDeadlineMs > 0 ? { connectionTimeoutMillis: statementDeadlineMs } : {}),
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveIdleMs,
    ...config,
  });
}

/** The connection class of `pool`'s connections: a connection of one's own is made like them. */
export function clientClassOf(pool: pg.Pool): typeof pg.Client {
  return (pool.options.Client as typeof pg.Client | undefined) ?? pg.Client;
}

/** The statement deadline of `pool`'s connections (ms), or undefined when they have none. */
export function statementDeadlineOf(pool: pg.Pool): number | undefined {
  return (clientClassOf(pool) as { statementDeadlineMs?: number }).statementDeadlineMs;
}

/** A statement went unanswered past the deadline: its connection was closed. */
export class StatementDeadlineError extends Error {
  /** As the kernel's own give-up on a dead connection: a connection error everywhere it is classified. */
  readonly code = 'ETIMEDOUT';

  constructor(deadlineMs: number, cause: unknown) {
    super(
      `PostgreSQL did not answer a statement within ${deadlineMs} ms (POSTGRES_STATEMENT_DEADLINE_MS): its connection was closed`,
      { cause },
    );
    this.name = 'StatementDeadlineError';
  }
}

type Callback = (error: Error | null | undefined, result?: unknown) => void;

/** pg.Client whose statements each have `deadlineMs` to be answered; past it the connection is closed. */
export function clientWithStatementDeadline(deadlineMs: number): typeof pg.Client {
  return class ClientWithStatementDeadline extends pg.Client {
    static readonly statementDeadlineMs = deadlineMs;

    // biome-ignore lint/suspicious/noExplicitAny: passes every overload of pg.Client's query through
    override query(...args: any[]): any {
      const send = (): unknown => (super.query as (...sent: unknown[]) => unknown).apply(this, args);
      const config = args[0] as { submit?: unknown; callback?: unknown } | null | undefined;
      // Cursors and streams (none of ours) answer in parts, for as long as they are read.
      if (typeof config?.submit === 'function') return send();
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        // With a statement in flight, end() destroys the socket: every statement on it fails at once,
        // and the pool drops the connection instead of handing it out again.
        this.end().catch(() => undefined);
      }, deadlineMs);
      const settled = (error: unknown): unknown => {
        clearTimeout(timer);
        return expired && error ? new StatementDeadlineError(deadlineMs, error) : error;
      };
      const answered =
        (callback: Callback): Callback =>
        (error, result) =>
          callback(settled(error) as Error | null | undefined, result);
      const callbackAt = args.findIndex((arg) => typeof arg === 'function');
      if (callbackAt >= 0) args[callbackAt] = answered(args[callbackAt] as Callback);
      else if (typeof config?.callback === 'function')
        config.callback = answered(config.callback as Callback);
      try {
        const sent = send();
        if (callbackAt >= 0 || !(sent instanceof Promise)) return sent;
        return sent.then(
          (result: unknown) => {
            settled(null);
            return result;
          },
          (error: unknown) => {
            throw settled(error);
          },
        );
      } catch (error) {
        clearTimeout(timer);
        throw error;
      }
    }
  };
}
