import { trace } from '@opentelemetry/api';
import winston from 'winston';
import { requestContext } from './request-context.js';

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

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read lines back. */
  stream?: NodeJS.WritableStream;
}

/** One JSON object per line: timestamp, level, service, message, ids, fields. */
export function createLogger({ service, level = 'info', stream }: LoggerOptions): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { service },
    format: winston.format.combine(withRequestIds(), winston.format.timestamp(), winston.format.json()),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
