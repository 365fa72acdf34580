/**
 * Up to four lists of patterns, each in match order (ascending rank), read as one list in match order;
 * a pattern is in at most one of them. One cursor serves one walk at a time and is reused from walk
 * to walk: the request path allocates nothing for it.
 */
export class RankOrderCursor<Pattern extends { readonly rank: number }> {
  /** The non-empty lists of the current walk (the first `#count`), and the next position in each. */
  readonly #lists: Array<readonly Pattern[]> = [];
  readonly #positions: number[] = [];
  #count = 0;

  start(a: readonly Pattern[], b: readonly Pattern[], c: readonly Pattern[], d: readonly Pattern[]): void {
    this.#count = 0;
    this.#add(a);
    this.#add(b);
    this.#add(c);
    this.#add(d);
  }

  /** The next pattern in match order, or undefined when every list is read. */
  next(): Pattern | undefined {
    const count = this.#count;
    const positions = this.#positions;
    if (count === 1) return this.#lists[0]![positions[0]!++];
    if (count === 2) {
      // A path's literal and generic lists, unfiled: the usual walk.
      const first = this.#lists[0]![positions[0]!];
      const second = this.#lists[1]![positions[1]!];
      if (second === undefined || (first !== undefined && first.rank < second.rank)) {
        positions[0]!++;
        return first;
      }
      positions[1]!++;
      return second;
    }
    let from = -1;
    let lowest = Number.POSITIVE_INFINITY;
    for (let n = 0; n < count; n++) {
      const pattern = this.#lists[n]![positions[n]!];
      if (pattern !== undefined && pattern.rank < lowest) {
        from = n;
        lowest = pattern.rank;
      }
    }
    return from < 0 ? undefined : this.#lists[from]![positions[from]!++];
  }

  #add(list: readonly Pattern[]): void {
    if (list.length === 0) return;
    this.#lists[this.#count] = list;
    this.#positions[this.#count] = 0;
    this.#count++;
  }
}
