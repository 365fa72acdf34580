import type { OriginConfig } from '@vantageedge/shared/domain/gateway-config';

export type CircuitState = 'closed' | 'open' | 'half_open';
export type CircuitSettings = OriginConfig['circuit_breaker'];
export type CircuitTripReason =
  | 'consecutive_failures'
  | 'error_rate'
  | 'probe_failed'
  | 'cool_down_over'
  | 'probes_succeeded';
export type CircuitListener = (from: CircuitState, to: CircuitState, reason: CircuitTripReason) => void;

/** Returned by `admit`: which round of probes a half-open admission belongs to; 0 = not a probe. */
export type Admission = number;
/** Admitted without a probe slot: the outcome is not a probe's (ignored while half-open or open). */
const WITHOUT_PROBE_SLOT: Admission = -1;

/**
 * The longest a half-open probe whose head was good is watched before its body ends: past it the probe
 * is judged a success (a stream, a large download), so a long answer keeps its slot, and the circuit
 * half-open, at most this long.
 */
export const HALF_OPEN_TRIAL_WATCH_MAX_MS = 2_000;

/**
 * One target's circuit, driven by request outcomes (not by wrapping calls, which is why this is not
 * cockatiel's breaker: the gateway learns outcomes through lease releases, and the window here is the
 * last N requests, not a time span).
 *
 * closed → open: `consecutive_failures` failures in a row, or an error rate ≥ `error_rate_threshold`
 *   over the last `window_requests` outcomes (only once that many have been seen).
 * open → half_open: `open_seconds` after opening, noticed lazily on the next admission check.
 * half_open: admits `half_open_requests` probes; all succeed → closed, any fails → open again. A probe
 *   is judged when its answer ends (a body the origin cuts fails it), or, a long one, once its body has
 *   streamed for `trialWatchMs` with its head good.
 */
export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #openedAt = 0;
  readonly #openMs: number;
  /**
   * How long a probe's body is watched before it is judged a success: the cool-down, at most
   * HALF_OPEN_TRIAL_WATCH_MAX_MS (a long answer keeps the circuit from other clients no longer than it
   * was open).
   */
  readonly trialWatchMs: number;
  // Closed-state window of the last `window_requests` outcomes, one bit each (1 = failure), as a ring
  // buffer: a byte each was 10 MB per 1,000 targets at the largest window.
  readonly #window: Uint8Array;
  readonly #windowSize: number;
  #windowNext = 0;
  #windowCount = 0;
  #windowFailures = 0;
  #consecutiveFailures = 0;
  // Half-open bookkeeping. Each half-open period is a new round, so a late outcome of an earlier
  // round's probe cannot close or reopen the circuit.
  #round = 0;
  #probesAdmitted = 0;
  #probesSucceeded = 0;

  constructor(
    private readonly settings: CircuitSettings,
    private readonly now: () => number,
    private readonly onTransition: CircuitListener = () => {},
  ) {
    this.#openMs = settings.open_seconds * 1000;
    this.trialWatchMs = Math.min(this.#openMs, HALF_OPEN_TRIAL_WATCH_MAX_MS);
    this.#windowSize = settings.window_requests;
    this.#window = new Uint8Array(Math.ceil(settings.window_requests / 8));
  }

  /** Current state, moving open → half_open first when the cool-down is over. */
  get state(): CircuitState {
    if (this.#state === 'open' && this.now() - this.#openedAt >= this.#openMs) {
      this.#round++;
      this.#probesAdmitted = 0;
      this.#probesSucceeded = 0;
      this.#transition('half_open', 'cool_down_over');
    }
    return this.#state;
  }

  /** Whether a request may go to this target now. No side effect besides the lazy cool-down check. */
  admits(): boolean {
    if (!this.settings.enabled) return true;
    const state = this.state;
    return (
      state === 'closed' || (state === 'half_open' && this.#probesAdmitted < this.settings.half_open_requests)
    );
  }

  /** Counts a request that `admits()` allowed; returns the probe round (0 when closed). */
  admit(): Admission {
    if (!this.settings.enabled || this.#state !== 'half_open') return 0;
    this.#probesAdmitted++;
    return this.#round;
  }

  /**
   * The set this circuit's set replaces (its origin was edited) has the same target's circuit open or
   * half-open: this one opens as of that opening (its own `open_seconds` from then), rather than closed
   * with no outcome seen, which let a failing target take traffic again on every edit of its origin.
   * Unless this one has seen an outcome already. True when it opened.
   */
  inheritOpen(previous: CircuitBreaker): boolean {
    if (!this.settings.enabled || this.#state !== 'closed' || this.#windowCount > 0) return false;
    if (previous.#state === 'closed') return false;
    this.#state = 'open';
    this.#openedAt = previous.#openedAt;
    this.#round++;
    return true;
  }

  record(success: boolean, admission: Admission): void {
    if (!this.settings.enabled) return;
    if (this.#state === 'closed') this.#recordClosed(success);
    else if (this.#state === 'half_open' && admission === this.#round) this.#recordProbe(success);
    // open (or a stale probe): outcomes of requests admitted before the trip say nothing new.
  }

  /**
   * The admitted request cannot tell anything about the target yet (its client is still sending the
   * body, at the client's pace): a half-open probe gives its slot back. Returns the admission it holds
   * until `readmit`.
   */
  yieldProbeSlot(admission: Admission): Admission {
    if (!this.isProbe(admission)) return admission;
    this.#probesAdmitted--;
    return WITHOUT_PROBE_SLOT;
  }

  /** A request that yielded its slot now waits on the target alone: a probe if a slot is free. */
  readmit(): Admission {
    return this.admits() ? this.admit() : WITHOUT_PROBE_SLOT;
  }

  /** The admitted request ended without telling anything about the target. */
  cancel(admission: Admission): void {
    if (this.isProbe(admission)) this.#probesAdmitted--;
  }

  /** Whether `admission` holds a probe slot of the current half-open round. */
  isProbe(admission: Admission): boolean {
    return this.settings.enabled && this.#state === 'half_open' && admission === this.#round;
  }

  #recordClosed(success: boolean): void {
    const failed = success ? 0 : 1;
    const byte = this.#windowNext >> 3;
    const bit = 1 << (this.#windowNext & 7);
    if (this.#windowCount === this.#windowSize)
      this.#windowFailures -= (this.#window[byte]! & bit) !== 0 ? 1 : 0;
    else this.#windowCount++;
    this.#window[byte] = failed ? this.#window[byte]! | bit : this.#window[byte]! & ~bit;
    this.#windowFailures += failed;
    this.#windowNext = (this.#windowNext + 1) % this.#windowSize;
    this.#consecutiveFailures = success ? 0 : this.#consecutiveFailures + 1;

    if (this.#consecutiveFailures >= this.settings.consecutive_failures) this.#open('consecutive_failures');
    else if (
      this.#windowCount === this.#windowSize &&
      this.#windowFailures >= this.settings.error_rate_threshold * this.#windowCount
    )
      this.#open('error_rate');
  }

  #recordProbe(success: boolean): void {
    if (!success) {
      this.#open('probe_failed');
      return;
    }
    this.#probesSucceeded++;
    if (this.#probesSucceeded >= this.settings.half_open_requests) {
      this.#resetWindow();
      this.#transition('closed', 'probes_succeeded');
    }
  }

  #open(reason: CircuitTripReason): void {
    this.#openedAt = this.now();
    this.#round++;
    this.#transition('open', reason);
  }

  #resetWindow(): void {
    this.#window.fill(0);
    this.#windowNext = 0;
    this.#windowCount = 0;
    this.#windowFailures = 0;
    this.#consecutiveFailures = 0;
  }

  #transition(to: CircuitState, reason: CircuitTripReason): void {
    const from = this.#state;
    this.#state = to;
    this.onTransition(from, to, reason);
  }
}
