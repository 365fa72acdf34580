import { describe, expect, it } from 'vitest';
import { asksForEventStream, isEventStream } from './event-streams.js';

describe('server-sent event streams', () => {
  it('are responses whose media type is text/event-stream, whatever its parameters and case', () => {
    for (const type of ['text/event-stream', ' Text/Event-Stream ; charset=utf-8', ['text/event-stream']])
      expect(isEventStream(type), String(type)).toBe(true);
    for (const type of [undefined, '', 'text/plain', 'text/event-streams', 'application/x-ndjson', 42])
      expect(isEventStream(type), String(type)).toBe(false);
  });

  it('are asked for by an Accept naming text/event-stream with a weight above 0', () => {
    for (const accept of [
      'text/event-stream',
      'application/json, TEXT/EVENT-STREAM; q=0.1',
      ['*/*', 'text/event-stream'],
    ])
      expect(asksForEventStream(accept), String(accept)).toBe(true);
    for (const accept of [
      undefined,
      '',
      '*/*',
      'text/*',
      'text/event-stream;q=0',
      'text/event-stream; q=0.000',
    ])
      expect(asksForEventStream(accept), String(accept)).toBe(false);
  });
});
