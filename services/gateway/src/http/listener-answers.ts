import type { ServerResponse } from 'node:http';

/** What a listener wrote on the connection itself, in place of the response the pipeline was giving. */
export interface ListenerAnswer {
  readonly status: number;
  readonly code: string;
  /** The bytes of its body. */
  readonly bodyBytes: number;
}

const ANSWER = Symbol('listenerAnswer');
/** null: the pipeline records the request of the response, and no listener answered it. */
type Answerable = ServerResponse & { [ANSWER]?: ListenerAnswer | null };

/** The pipeline records the request of `res` under its tenant once `res` closes (whoever answered it). */
export function recordedByPipeline(res: ServerResponse): void {
  (res as Answerable)[ANSWER] = null;
}

/**
 * The listener answered the request of `res` itself (node's parser refused its body, or the body was not
 * received in time, before the pipeline's answer went out). When the pipeline records that request, it
 * records it with this answer, the one its client got, and this is true; false when the listener is to
 * record it (a request the pipeline never took).
 */
export function answeredByListener(res: object, answer: ListenerAnswer): boolean {
  const answerable = res as Answerable;
  if (answerable[ANSWER] === undefined) return false;
  answerable[ANSWER] = answer;
  return true;
}

/** The answer a listener gave in place of `res`, if it did. */
export function listenerAnswerOf(res: ServerResponse): ListenerAnswer | undefined {
  return (res as Answerable)[ANSWER] ?? undefined;
}

/**
 * A listener's own answer, written on the connection (which it closes): `statusLine` (`400 Bad Request`)
 * with the gateway's JSON error `body`, dated as every answer of the pipeline is (RFC 9110 §6.6.1).
 */
export function listenerErrorAnswer(statusLine: string, body: string): string {
  return (
    `HTTP/1.1 ${statusLine}\r\nContent-Type: application/json\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
