import { type HeaderValue, headerList } from './header-values.js';

/** `text/event-stream`, any case, with or without parameters (tested on every response: no allocation). */
const EVENT_STREAM_TYPE = /^[\t ]*text\/event-stream[\t ]*(?:;|$)/i;
const NAMES_EVENT_STREAM = /text\/event-stream/i;

/**
 * The response is a stream of server-sent events (Content-Type `text/event-stream`, any parameters):
 * events as they happen, never one representation to store and replay to other clients.
 */
export function isEventStream(contentType: HeaderValue): boolean {
  if (typeof contentType === 'string') return EVENT_STREAM_TYPE.test(contentType);
  const value = headerList(contentType);
  return value !== undefined && EVENT_STREAM_TYPE.test(value);
}

/**
 * The request's Accept names `text/event-stream` with a weight above 0 (what EventSource sends): the
 * client asks for a stream of events.
 */
export function asksForEventStream(accept: HeaderValue): boolean {
  const value = headerList(accept);
  if (value === undefined || !NAMES_EVENT_STREAM.test(value)) return false;
  for (const range of value.split(',')) {
    if (!EVENT_STREAM_TYPE.test(range)) continue;
    const weight = /;\s*q\s*=\s*([0-9.]+)/i.exec(range)?.[1];
    if (weight === undefined || Number(weight) > 0) return true;
  }
  return false;
}
