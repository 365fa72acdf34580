import { trace } from '@opentelemetry/api';
import type { Producer, ProducerRecord, RecordMetadata } from 'kafkajs';
import { endFailedClientSpan, startClientSpan, underRecordingSpan } from '../observability/client-span.js';

const tracer = trace.getTracer('vantageedge-kafka');

/**
 * `producer.send(record)`, as a CLIENT span under the active span (a projector's publication) when
 * tracing is on, following OpenTelemetry's messaging conventions: `send <topic>`, with the topic, the
 * number of messages and the client id; a failed send has kafkajs' error name as `error.type`. CLIENT,
 * not PRODUCER: the messages carry no trace context for a consumer to continue.
 */
export async function sendWithSpan(
  producer: Producer,
  record: ProducerRecord,
  clientId: string,
): Promise<RecordMetadata[]> {
  if (!underRecordingSpan()) return producer.send(record);
  const span = startClientSpan(tracer, `send ${record.topic}`, {
    'messaging.system': 'kafka',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
    'messaging.destination.name': record.topic,
    'messaging.batch.message_count': record.messages.length,
    'messaging.client.id': clientId,
  });
  try {
    const sent = await producer.send(record);
    span.end();
    return sent;
  } catch (error) {
    endFailedClientSpan(span, error);
    throw error;
  }
}
