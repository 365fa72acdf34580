import type { LookupAddress } from 'node:dns';

/**
 * The addresses each lookup last answered, kept for `staleMs` after that answer: what a lookup that fails
 * for a reason of the name servers' (EAI_AGAIN: SERVFAIL, no answer in time) is answered with instead,
 * as Kong's `dns_stale_ttl` and Envoy's DNS clusters keep serving the last good answer while the resolver
 * fails (RFC 8767's serve-stale). A name that no longer exists (ENOTFOUND) is never answered from here.
 *
 * Answers are kept in the order they came, so the expired ones are in front and are dropped as new ones
 * come; at most `maxAnswers` are kept.
 */
export class LastDnsAnswers {
  readonly #answers = new Map<string, { readonly addresses: LookupAddress[]; readonly at: number }>();

  readonly #staleMs: number;
  readonly #maxAnswers: number;
  readonly #now: () => number;

  constructor(staleMs: number, maxAnswers: number, now: () => number) {
    this.#staleMs = staleMs;
    this.#maxAnswers = maxAnswers;
    this.#now = now;
  }

  remember(key: string, addresses: LookupAddress[]): void {
    if (addresses.length === 0 || this.#staleMs <= 0) return;
    const now = this.#now();
    this.#answers.delete(key);
    this.#answers.set(key, { addresses, at: now });
    for (const [oldest, answer] of this.#answers) {
      if (this.#answers.size <= this.#maxAnswers && now - answer.at < this.#staleMs) break;
      this.#answers.delete(oldest);
    }
  }

  /** The addresses `key` last resolved to, unless that answer is `staleMs` old or more. */
  last(key: string): LookupAddress[] | undefined {
    const answer = this.#answers.get(key);
    if (answer === undefined) return undefined;
    if (this.#now() - answer.at < this.#staleMs) return answer.addresses;
    this.#answers.delete(key);
    return undefined;
  }
}
