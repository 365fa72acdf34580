/**
 * `text` cut to at most `maxChars` UTF-16 units (an ellipsis ending a cut one), as PostgreSQL can store
 * it: no U+0000 and no unpaired surrogate (each becomes U+FFFD), and a cut never splits a pair. An error
 * message quoted into an event or a text column may carry either, and either fails the whole write.
 */
export function storableExcerpt(text: string, maxChars: number): string {
  const whole = text.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
  if (whole.length <= maxChars) return whole;
  let end = maxChars - 1;
  const last = whole.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${whole.slice(0, end)}…`;
}

/** A surrogate without its pair. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
