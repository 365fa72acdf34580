import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ownCopy, SHORTEST_VIEW } from '../text/own-copy.js';

/**
 * The SDK cuts a long attribute value with substring(), and V8 makes such a cut a view of the whole
 * string: a span cut to SPAN_ATTRIBUTE_VALUE_MAX characters of a 16 KiB header kept all 16 KiB while it
 * waited in the export queue. As each span ends, before it is queued, this gives every string attribute
 * value a copy of its own, so a queued span holds only what it will send.
 */
export class DetachedAttributesProcessor implements SpanProcessor {
  onStart(_span: Span, _context: Context): void {}

  onEnding(span: Span): void {
    for (const [key, value] of Object.entries(span.attributes)) {
      if (typeof value === 'string' && value.length >= SHORTEST_VIEW) span.setAttribute(key, ownCopy(value));
    }
  }

  onEnd(_span: ReadableSpan): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
