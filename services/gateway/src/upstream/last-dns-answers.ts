import type { LookupAddress } from 'node:dns';

export interface LastDnsAnswersBounds {
  /** How long an answer is kept after it came. */
  readonly staleMs: number;
  /** Answers kept, every owner's together. */
  readonly maxAnswers: number;
  /** Answers kept of one owner (a tenant): its own oldest go first, never another's. */
  readonly maxAnswersPerOwner: number;
  /** Addresses kept of one answer, the first the resolver gave. */
  readonly maxAddresses: number;
}

interface Answer {
  readonly owner: string;
  readonly addresses: LookupAddress[];
  readonly at: number;
}

/**
 * The addresses each lookup last answered, kept for `staleMs` after that answer: what a lookup that fails
 * for a reason of the name servers' (EAI_AGAIN: SERVFAIL, no answer in time) is answered with instead,
 * as Kong's `dns_stale_ttl` and Envoy's DNS clusters keep serving the last good answer while the resolver
 * fails (RFC 8767's serve-stale). A name that no longer exists (ENOTFOUND) is never answered from here.
 *
 * Answers are kept in the order they came, so the expired ones are in front and are dropped as new ones
 * come. Each belongs to an owner (the tenant whose lookup it answered): an owner's names beyond
 * `maxAnswersPerOwner` push out its own oldest, so a tenant whose config names many names (or new ones
 * at every change) cannot push out the others'. A name's first `maxAddresses` addresses are kept: the
 * answers of a zone its tenant runs may hold thousands.
 */
export class LastDnsAnswers {
  /** By owner and key, oldest first. */
  readonly #answers = new Map<string, Answer>();
  /** Each owner's entries of #answers, oldest first. */
  readonly #owners = new Map<string, Set<string>>();
  readonly #bounds: LastDnsAnswersBounds;
  readonly #now: () => number;

  constructor(bounds: LastDnsAnswersBounds, now: () => number) {
    this.#bounds = bounds;
    this.#now = now;
  }

  remember(owner: string, key: string, addresses: LookupAddress[]): void {
    const { staleMs, maxAnswers, maxAnswersPerOwner, maxAddresses } = this.#bounds;
    if (addresses.length === 0 || staleMs <= 0) return;
    const now = this.#now();
    const id = entryId(owner, key);
    this.#drop(id);
    const kept = addresses.length > maxAddresses ? addresses.slice(0, maxAddresses) : addresses;
    this.#answers.set(id, { owner, addresses: kept, at: now });
    let owned = this.#owners.get(owner);
    if (owned === undefined) {
      owned = new Set();
      this.#owners.set(owner, owned);
    }
    owned.add(id);
    for (const oldest of owned) {
      if (owned.size <= maxAnswersPerOwner) break;
      this.#drop(oldest);
    }
    for (const [oldest, answer] of this.#answers) {
      if (this.#answers.size <= maxAnswers && now - answer.at < staleMs) break;
      this.#drop(oldest);
    }
  }

  /** The addresses `key` of `owner` last resolved to, unless that answer is `staleMs` old or more. */
  last(owner: string, key: string): LookupAddress[] | undefined {
    const id = entryId(owner, key);
    const answer = this.#answers.get(id);
    if (answer === undefined) return undefined;
    if (this.#now() - answer.at < this.#bounds.staleMs) return answer.addresses;
    this.#drop(id);
    return undefined;
  }

  #drop(id: string): void {
    const answer = this.#answers.get(id);
    if (answer === undefined) return;
    this.#answers.delete(id);
    const owned = this.#owners.get(answer.owner);
    owned?.delete(id);
    if (owned?.size === 0) this.#owners.delete(answer.owner);
  }
}

function entryId(owner: string, key: string): string {
  return `${owner}\u0000${key}`;
}
