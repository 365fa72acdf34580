import { type Attributes, trace } from '@opentelemetry/api';
import { type Command, Redis } from 'ioredis';
import { endFailedClientSpan, startClientSpan, underRecordingSpan } from '../observability/client-span.js';
import type { RedisClient } from './client.js';

const tracer = trace.getTracer('vantageedge-redis');

/** A refused command's error prefix (`ERR`, `WRONGTYPE`, `NOSCRIPT`…): Redis's own error kind. */
const ERROR_PREFIX = /^[A-Z]+(?= )/;

/**
 * Makes `client` send each command as a CLIENT span under the active span when it records (client-span.ts),
 * following OpenTelemetry's database conventions for Redis: named by the command (`SET`, `EVALSHA`),
 * with `db.system.name`, `db.operation.name` and, for a single server, its address and database index.
 * A command's arguments (keys, values) are never recorded. A refused command has Redis's error prefix as
 * `error.type`. Each command is one span, however often a cluster client redirects it.
 */
export function traceRedisCommands(client: RedisClient): void {
  const send = client.sendCommand.bind(client) as (
    command: Command,
    stream?: unknown,
    node?: unknown,
  ) => unknown;
  const traced = new WeakSet<Command>();
  const server = serverAttributes(client);
  client.sendCommand = ((command: Command, stream?: unknown, node?: unknown) => {
    if (!underRecordingSpan() || traced.has(command)) return send(command, stream, node);
    traced.add(command);
    const operation = command.name.toUpperCase();
    const span = startClientSpan(tracer, operation, {
      'db.system.name': 'redis',
      'db.operation.name': operation,
      ...server,
    });
    command.promise.then(
      () => span.end(),
      (error: unknown) => {
        const prefix = error instanceof Error ? ERROR_PREFIX.exec(error.message)?.[0] : undefined;
        if (error instanceof Error && error.name === 'ReplyError' && prefix !== undefined) {
          endFailedClientSpan(span, { code: prefix }, { 'db.response.status_code': prefix });
        } else endFailedClientSpan(span, error);
      },
    );
    return send(command, stream, node);
  }) as RedisClient['sendCommand'];
}

function serverAttributes(client: RedisClient): Attributes {
  if (!(client instanceof Redis)) return {};
  const { host, port, db } = client.options;
  return {
    ...(host === undefined ? {} : { 'server.address': host }),
    ...(port === undefined ? {} : { 'server.port': port }),
    'db.namespace': String(db ?? 0),
  };
}
