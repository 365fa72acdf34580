import { type Attributes, context, type Span, trace } from '@opentelemetry/api';
import pg from 'pg';
import { endFailedClientSpan, startClientSpan, underRecordingSpan } from '../observability/client-span.js';
import { postgresQuerySummary } from './query-summary.js';

/**
 * A CLIENT span per statement a service sends to PostgreSQL, following OpenTelemetry's database
 * conventions: named by `db.query.summary` (`SELECT event_store_append`, `INSERT read_models.routes`),
 * with `db.system.name`, `db.operation.name`, `db.collection.name`, `db.namespace` and the server's
 * address. The statement's text is never recorded, nor its values, nor an error's message (which can
 * quote them): a failure is its SQLSTATE (`error.type`, `db.response.status_code`). Made only under a
 * recording span (client-span.ts); otherwise a statement costs one check more.
 */

const tracer = trace.getTracer('vantageedge-postgres');

type Callback = (error: Error | null | undefined, result?: unknown) => void;

/** `Base` (pg.Client or a subclass) whose statements are traced as above. */
export function clientWithStatementSpans(Base: typeof pg.Client): typeof pg.Client {
  return class ClientWithStatementSpans extends Base {
    // biome-ignore lint/suspicious/noExplicitAny: passes every overload of pg.Client's query through
    override query(...args: any[]): any {
      const send = super.query as (...sent: unknown[]) => unknown;
      const config = args[0] as { text?: unknown; submit?: unknown; callback?: unknown } | string | null;
      // Cursors and streams (none of ours) answer in parts, for as long as they are read: no span.
      if (!underRecordingSpan() || typeof (config as { submit?: unknown } | null)?.submit === 'function')
        return send.apply(this, args);
      const span = statementSpan(this, typeof config === 'string' ? config : config?.text);
      const callbackAt = args.findIndex((arg) => typeof arg === 'function');
      if (callbackAt >= 0) args[callbackAt] = endingSpan(span, args[callbackAt] as Callback);
      else if (typeof config === 'object' && typeof config?.callback === 'function')
        args[0] = { ...config, callback: endingSpan(span, config.callback as Callback) };
      try {
        const sent = send.apply(this, args);
        if (callbackAt >= 0 || !(sent instanceof Promise)) return sent;
        return sent.then(
          (result: unknown) => {
            span.end();
            return result;
          },
          (error: unknown) => {
            endFailedStatementSpan(span, error);
            throw error;
          },
        );
      } catch (error) {
        endFailedStatementSpan(span, error);
        throw error;
      }
    }
  };
}

/**
 * pg.Pool whose callback-style checkouts (its own `query` waits for a connection that way) go on in the
 * caller's context. pg-pool calls a waiting checkout back from the `release` of the connection it gets,
 * in the context of whoever released it: a statement that waited for a busy pool would otherwise be
 * traced under another request — another tenant's. That holds for a caller with no recording span too
 * (a projector polling, a request not sampled): its statement must not land under the releaser's. With
 * tracing off, binding to the no-op context manager returns the callback itself.
 */
export class PoolKeepingCallerContext extends pg.Pool {
  // biome-ignore lint/suspicious/noExplicitAny: both overloads of pg.Pool's connect
  override connect(callback?: any): any {
    if (typeof callback !== 'function') return super.connect(callback);
    return super.connect(context.bind(context.active(), callback));
  }
}

function statementSpan(client: pg.Client, text: unknown): Span {
  const summary = typeof text === 'string' ? postgresQuerySummary(text) : undefined;
  const attributes: Attributes = {
    'db.system.name': 'postgresql',
    'server.address': client.host,
    'server.port': client.port,
  };
  if (client.database !== undefined) attributes['db.namespace'] = client.database;
  if (summary) {
    attributes['db.operation.name'] = summary.operation;
    attributes['db.query.summary'] = summary.summary;
    if (summary.collection !== undefined) attributes['db.collection.name'] = summary.collection;
  }
  return startClientSpan(tracer, summary?.summary ?? 'postgresql', attributes);
}

function endingSpan(span: Span, callback: Callback): Callback {
  return (error, result) => {
    if (error) endFailedStatementSpan(span, error);
    else span.end();
    callback(error, result);
  };
}

function endFailedStatementSpan(span: Span, error: unknown): void {
  // PostgreSQL's own refusals carry a SQLSTATE; a lost connection a node errno code.
  endFailedClientSpan(
    span,
    error,
    error instanceof pg.DatabaseError && error.code !== undefined
      ? { 'db.response.status_code': error.code }
      : undefined,
  );
}
