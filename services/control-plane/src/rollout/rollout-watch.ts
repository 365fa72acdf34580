import type { RolloutStatus, RolloutWaitResult } from './rollout-status.js';

interface Waiter {
  minPosition: bigint | undefined;
  deadline: number;
  /** Looks started before the waiter came may predate its change: only later ones count for it. */
  firstLook: number;
  status: RolloutStatus | null;
  resolve: (result: RolloutWaitResult) => void;
}

type Look =
  | { status: RolloutStatus | null; unreadable?: undefined }
  | { status?: undefined; unreadable: string };

/**
 * One look at a tenant's rollout per interval for every request waiting on that tenant, none while
 * nobody waits: many waits (one admin's, or a tenant's many admins') cost the PostgreSQL pool and Redis
 * what one does. Each waiter leaves when its change is live everywhere, when its version was refused by
 * the bus, or at its deadline.
 */
export class RolloutWatch {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private looks = 0;

  constructor(
    private readonly read: (tenantId: string) => Promise<RolloutStatus | null>,
    private readonly intervalMs: number,
    /** Once aborted (the process stops), every wait ends at its next look, a new one at its first. */
    private readonly stopping?: AbortSignal,
  ) {
    stopping?.addEventListener('abort', () => this.endWaits(), { once: true });
  }

  wait(tenantId: string, minPosition: bigint | undefined, deadline: number): Promise<RolloutWaitResult> {
    if (this.stopping?.aborted) deadline = Math.min(deadline, Date.now());
    return new Promise((resolve) => {
      let waiting = this.waiters.get(tenantId);
      const idle = !waiting;
      if (!waiting) {
        waiting = new Set();
        this.waiters.set(tenantId, waiting);
      }
      waiting.add({ minPosition, deadline, firstLook: this.looks + 1, status: null, resolve });
      if (idle) void this.poll(tenantId, waiting);
    });
  }

  private endWaits(): void {
    const now = Date.now();
    for (const waiting of this.waiters.values())
      for (const waiter of waiting) waiter.deadline = Math.min(waiter.deadline, now);
  }

  private async poll(tenantId: string, waiting: Set<Waiter>): Promise<void> {
    while (waiting.size > 0) {
      const number = ++this.looks;
      const look: Look = await this.read(tenantId).then(
        (status) => ({ status }),
        (error: unknown) => ({ unreadable: error instanceof Error ? error.message : String(error) }),
      );
      const now = Date.now();
      for (const waiter of waiting) {
        if (waiter.firstLook > number) continue;
        const result = settle(waiter, look, now);
        if (result) {
          waiting.delete(waiter);
          waiter.resolve(result);
        }
      }
      if (waiting.size === 0) break;
      const nearest = Math.min(...[...waiting].map((waiter) => waiter.deadline));
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(this.intervalMs, Math.max(1, nearest - now))),
      );
    }
    // No await between the loop's last check and here: a waiter added later starts a new poll.
    this.waiters.delete(tenantId);
  }
}

/** The waiter's answer after this look, or undefined to keep waiting. */
function settle(waiter: Waiter, look: Look, now: number): RolloutWaitResult | undefined {
  if (look.unreadable === undefined) waiter.status = look.status;
  const status = look.unreadable === undefined ? look.status : null;
  // The tenant's version folds every one of its events up to it: a tenant stored ahead of the
  // checkpoint (beside a large tenant's batch) has its change in before the checkpoint passes it.
  const folded =
    waiter.minPosition === undefined ||
    (status &&
      (BigInt(status.projected_position) >= waiter.minPosition ||
        BigInt(status.target_version) >= waiter.minPosition));
  if (status && folded && status.live_everywhere) return { done: true, status };
  // A version the bus refused never reaches a replica, nor does any change of a tenant quarantined in
  // the snapshots: waiting longer cannot change the answer.
  if (status && folded && (status.publish_error !== null || status.quarantined_since !== null)) {
    return { done: false, status };
  }
  if (now >= waiter.deadline) {
    return {
      done: false,
      status: waiter.status,
      ...(look.unreadable !== undefined ? { unreadable: look.unreadable } : {}),
    };
  }
  return undefined;
}
