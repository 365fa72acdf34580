import { trace } from '@opentelemetry/api';
import winston from 'winston';
import { BoundedLogStream } from './bounded-log-stream.js';
import { requestContext } from './request-context.js';
import { withTerminalControlsEscaped } from './terminal-controls.js';

export type Logger = winston.Logger;

/**
 * What a component needs to log: three levels with structured fields. The winston Logger is one;
 * tests pass `silentLogger` or a recorder.
 */
export interface StructuredLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: StructuredLogger = { info() {}, warn() {}, error() {} };

/** Adds request_id / trace_id (from the request context or the active span) to every line. */
const withRequestIds = winston.format((info) => {
  const context = requestContext.getStore();
  if (context?.requestId && info['request_id'] === undefined) info['request_id'] = context.requestId;
  if (context?.tenantId && info['tenant_id'] === undefined) info['tenant_id'] = context.tenantId;
  const traceId = context?.traceId ?? trace.getActiveSpan()?.spanContext().traceId;
  if (traceId && info['trace_id'] === undefined) info['trace_id'] = traceId;
  return info;
});

const MESSAGE = Symbol.for('message');

/**
 * The JSON line with DEL and the C1 controls escaped too (terminal-controls.ts): fields may carry what a
 * client or a tenant sent (a path, an origin's error), and an operator tails these lines in a terminal.
 */
const withoutTerminalControls = winston.format((info) => {
  const line = (info as Record<symbol, unknown>)[MESSAGE];
  if (typeof line === 'string')
    (info as Record<symbol, unknown>)[MESSAGE] = withTerminalControlsEscaped(line);
  return info;
});

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read lines back. */
  stream?: NodeJS.WritableStream;
  /** Bytes the destination may hold unwritten before new lines are dropped (see BoundedLogStream). */
  maxBufferedBytes?: number;
}

/** Lines waiting for a slow stdout, the same budget as the gateway's access log. */
export const LOG_BUFFER_BYTES_DEFAULT = 4 * 1024 * 1024;

/** One JSON object per line: timestamp, level, service, message, ids, fields. */
export function createLogger({
  service,
  level = 'info',
  stream = process.stdout,
  maxBufferedBytes = LOG_BUFFER_BYTES_DEFAULT,
}: LoggerOptions): Logger {
  const destination = new BoundedLogStream(stream, { maxBufferedBytes, service });
  return winston.createLogger({
    level,
    defaultMeta: { service },
    format: winston.format.combine(
      withRequestIds(),
      winston.format.timestamp(),
      winston.format.json(),
      withoutTerminalControls(),
    ),
    transports: [new winston.transports.Stream({ stream: destination })],
  });
}
