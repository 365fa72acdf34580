/**
 * `value` without the slashes that end it, found by one scan back from the end. (A regex for a run of
 * slashes at the end tries every slash of every run as the start of that run: a 16 KiB value of
 * slashes that ends in a letter takes over a second.)
 */
export function withoutTrailingSlashes(value: string): string {
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === 0x2f) end--;
  return end === value.length ? value : value.slice(0, end);
}
