import type { IncomingHttpHeaders } from 'node:http';
import type { Counter } from 'prom-client';
import type { CacheFill, FillStart } from './cache-fill.js';
import { declaredLength, freshnessFor, storageDecision, type UpstreamResponse } from './cacheability.js';
import { CollectedBody } from './collected-body.js';
import type { CrossReplicaFill } from './cross-replica-fill.js';
import type { FillBudget } from './fill-budget.js';
import type { FillCommit } from './fill-commit.js';
import { headDescribes } from './revalidation.js';

export interface FillResponseOptions {
  budget: FillBudget;
  fillDeadlineMs: number;
  notStored: Counter<'reason'>;
  overBudget: Counter;
  revalidations: Counter<'result'>;
  crossReplicaFill: CrossReplicaFill;
  fillCommit: FillCommit;
}

/** The leader's origin response taken for the cache (ResponseCache.beginFill and store). */
export interface FillResponse {
  beginFill(fill: CacheFill, method: string, status: number, headers: IncomingHttpHeaders): FillStart;
  store(fill: CacheFill, method: string, response: UpstreamResponse): Promise<boolean>;
  /** The rules refuse the fill's response: counted by `reason`, the fill dropped. */
  refuse(fill: CacheFill, reason: string): void;
}

/**
 * Decides whether the origin's response to a fill may be stored (RFC 9111, cacheability.ts) and, for a
 * streamed one, collects its body as it goes to the client within the policy's max_body_bytes, the
 * tenant's share of the replica's fill budget and the fill deadline.
 */
export function createFillResponse(options: FillResponseOptions): FillResponse {
  const { budget, fillDeadlineMs, notStored, overBudget, revalidations } = options;
  const { dropFill, handOver } = options.crossReplicaFill;
  const { commit, markStale } = options.fillCommit;

  const refuse = (fill: CacheFill, reason: string): void => {
    notStored.labels({ reason }).inc();
    dropFill(fill);
  };

  /** A revalidation the origin answered with a full response: the stored entry changed. */
  const replaced = (fill: CacheFill): void => {
    if (fill.revalidating === null) return;
    fill.revalidating = null;
    revalidations.labels({ result: 'modified' }).inc();
  };

  const store = async (fill: CacheFill, method: string, response: UpstreamResponse): Promise<boolean> => {
    replaced(fill);
    const freshness = freshnessFor(fill.policy, method, response, fill);
    if ('notStored' in freshness) {
      refuse(fill, freshness.notStored);
      return false;
    }
    return commit(fill, response.status, response.headers, response.body!, freshness);
  };

  const beginFill = (
    fill: CacheFill,
    method: string,
    status: number,
    headers: IncomingHttpHeaders,
  ): FillStart => {
    replaced(fill);
    const decision = storageDecision(fill.policy, method, status, headers, fill);
    if ('notStored' in decision) {
      refuse(fill, decision.notStored);
      // The resource changed since its GET response was stored (RFC 9111 §4.3.5).
      if (method === 'HEAD' && status === 200 && fill.found !== null && !headDescribes(fill.found, headers))
        markStale(fill, fill.found);
      return { outcome: 'not_storable', reason: decision.notStored };
    }
    const tenantId = fill.policy.tenantId;
    // An announced length is only checked, never reserved: bytes are reserved as they arrive, so an
    // origin that announces much and sends little holds only what it sent.
    const declared = declaredLength(headers);
    if (budget.exhaustedFor(tenantId) || (declared !== undefined && declared > budget.available(tenantId))) {
      overBudget.inc();
      dropFill(fill);
      return { outcome: 'over_budget' };
    }
    const maxBytes = fill.policy.maxBodyBytes;
    let reserved = 0;
    let collected: CollectedBody | null = new CollectedBody();
    let settled = false;
    const giveBack = () => {
      clearTimeout(deadline);
      collected = null;
      budget.release(tenantId, reserved);
      reserved = 0;
    };
    const stopCollecting = (reason: 'body_too_large' | 'fill_budget' | 'fill_deadline') => {
      if (collected === null) return;
      giveBack();
      if (reason === 'fill_budget') overBudget.inc();
      else notStored.labels({ reason }).inc();
      dropFill(fill);
    };
    // A fill that takes too long stops collecting even when no further chunk comes (a trickling origin).
    const deadline = setTimeout(() => stopCollecting('fill_deadline'), fillDeadlineMs);
    deadline.unref();
    return {
      outcome: 'collect',
      body: {
        get collecting() {
          return collected !== null && !settled;
        },
        push(chunk) {
          if (collected === null) return;
          if (reserved + chunk.length > maxBytes) return stopCollecting('body_too_large');
          if (!budget.tryReserve(tenantId, chunk.length)) return stopCollecting('fill_budget');
          reserved += chunk.length;
          collected.append(chunk);
        },
        async end() {
          if (settled) return false;
          settled = true;
          if (collected === null) return false;
          const body = collected.concat();
          giveBack();
          return commit(fill, status, headers, body, decision);
        },
        abort() {
          if (settled) return;
          settled = true;
          if (collected !== null) giveBack();
          dropFill(fill);
        },
        handOver() {
          if (collected === null || settled) return false;
          // One client's held-back fills of URLs of its choosing took the tenant's whole share, and
          // every other fill of the tenant went uncached (BYPASS) until the fill deadline.
          const shareUnderPressure = budget.usedBy(tenantId) * 2 >= budget.tenantLimit;
          if (fill.flight.followers === 0 && !shareUnderPressure) return false;
          giveBack();
          notStored.labels({ reason: 'client_stalled' }).inc();
          handOver(fill);
          return true;
        },
      },
    };
  };

  return { beginFill, store, refuse };
}
