/**
 * The tenants of publications whose send failed, each due for sending again once a request of that send
 * can no longer reach the topic (SnapshotBus.lateSendWindowMs): a request of a failed send that lands
 * late is appended after the versions sent since, and compaction keeps a tenant's last record, so the
 * tenant's current version must be sent once more after it. In memory, one entry per tenant (a later
 * failure pushes its tenants' time back) and one timer, armed only while an entry waits and unref'd.
 */
export class LateSendGuard {
  readonly #delayMs: number;
  readonly #onDue: (tenantIds: string[]) => void;
  readonly #now: () => number;
  /** Tenant → when it is due; in insertion order, which is due order (one delay, a clock that only grows). */
  readonly #dueAt = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  /** Called once no tenant waits any more. */
  #emptied: Array<() => void> = [];

  constructor(
    delayMs: number,
    onDue: (tenantIds: string[]) => void,
    now: () => number = () => performance.now(),
  ) {
    this.#delayMs = delayMs;
    this.#onDue = onDue;
    this.#now = now;
  }

  /** A send of these tenants failed (or its outcome is unknown): each is due `delayMs` from now. */
  failed(tenantIds: readonly string[]): void {
    const at = this.#now() + this.#delayMs;
    for (const tenantId of tenantIds) {
      this.#dueAt.delete(tenantId);
      this.#dueAt.set(tenantId, at);
    }
    this.#arm();
  }

  /** Tenants waiting for their time. */
  get size(): number {
    return this.#dueAt.size;
  }

  /** Resolves once every waiting tenant has come due and been handed to `onDue` (or stop() was called). */
  whenEmpty(): Promise<void> {
    if (this.#dueAt.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptied.push(resolve));
  }

  /** Forgets every waiting tenant and clears the timer. */
  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#dueAt.clear();
    this.#settleEmpty();
  }

  #settleEmpty(): void {
    if (this.#dueAt.size > 0) return;
    const waiters = this.#emptied;
    this.#emptied = [];
    for (const resolve of waiters) resolve();
  }

  #arm(): void {
    if (this.#timer) return;
    const first = this.#dueAt.values().next();
    if (first.done) return;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(first.value - this.#now())));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = null;
    const now = this.#now();
    const due: string[] = [];
    for (const [tenantId, at] of this.#dueAt) {
      if (at > now) break;
      due.push(tenantId);
      this.#dueAt.delete(tenantId);
    }
    this.#arm();
    if (due.length > 0) this.#onDue(due);
    this.#settleEmpty();
  }
}
