/** The most of a method the access log and spans carry: every method the gateway accepts is shorter. */
export const RECORDED_METHOD_MAX = 32;

/**
 * The method as the access log and spans record it: cut after RECORDED_METHOD_MAX characters and then
 * ending in `…`. Over HTTP/2 `:method` may be any token up to the header limit (16 KiB), and such a
 * request is refused only after its SERVER span started and before its line is written. A cut one is
 * copied out: a span waits in the export queue, and a cut of the method would keep all of it alive.
 */
export function recordedMethod(method: string): string {
  if (method.length <= RECORDED_METHOD_MAX) return method;
  return Buffer.from(`${method.slice(0, RECORDED_METHOD_MAX)}…`, 'utf8').toString('utf8');
}
