import { signingKeyWithdrawn, type TrustedKeySet, type VerifyingKeySet } from '../auth/jwks.js';

/**
 * The open WebSockets admitted by tokens of each remote key set (Clerk's JWKS, a tenant's OIDC
 * jwks_url), handed to `withdrawn` when the set withdraws their token's signing key — a provider
 * rotating a leaked key out. The replica learns that when it refreshes the set (a token past the set's
 * refresh age, an unknown kid); only that set's connections are looked at then: no work per frame, no
 * timer per connection. A key the set still lists keeps its connections open.
 */
export class SigningKeyWatch<Connection> {
  readonly #withdrawn: (connection: Connection) => void;
  readonly #bySet = new Map<
    TrustedKeySet,
    { readonly connections: Map<Connection, VerifyingKeySet>; readonly stop: () => void }
  >();
  readonly #setOf = new Map<Connection, TrustedKeySet>();

  constructor(withdrawn: (connection: Connection) => void) {
    this.#withdrawn = withdrawn;
  }

  /** Watches the connection until `forget`; false (not watched) when its key is withdrawn already. */
  watch(connection: Connection, verifiedWith: VerifyingKeySet): boolean {
    if (signingKeyWithdrawn(verifiedWith)) return false;
    const { set } = verifiedWith;
    let watched = this.#bySet.get(set);
    if (watched === undefined) {
      watched = { connections: new Map(), stop: set.onWithdrawal(() => this.#recheck(set)) };
      this.#bySet.set(set, watched);
    }
    watched.connections.set(connection, verifiedWith);
    this.#setOf.set(connection, set);
    return true;
  }

  forget(connection: Connection): void {
    const set = this.#setOf.get(connection);
    if (set === undefined) return;
    this.#setOf.delete(connection);
    const watched = this.#bySet.get(set);
    if (watched === undefined) return;
    watched.connections.delete(connection);
    if (watched.connections.size > 0) return;
    watched.stop();
    this.#bySet.delete(set);
  }

  #recheck(set: TrustedKeySet): void {
    const watched = this.#bySet.get(set);
    if (watched === undefined) return;
    for (const [connection, verifiedWith] of [...watched.connections]) {
      if (signingKeyWithdrawn(verifiedWith)) this.#withdrawn(connection);
    }
  }
}
