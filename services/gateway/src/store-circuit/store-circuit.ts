import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';

/**
 * The circuit breaker every gateway component puts around its shared store (Redis): after
 * `failures` consecutive failed calls the circuit opens and the store is not called for
 * `halfOpenAfterMs`; then one trial call decides (success closes it, failure opens it again). So an
 * outage costs at most one command timeout per period, and recovery needs nobody.
 *
 * cockatiel only moves Open → HalfOpen inside execute(), so while a circuit is open and no trial is
 * due, `skipping` says so synchronously: callers answer without Redis and without even creating a
 * rejected promise per request.
 *
 * Only failures of the store count: a connection that fails or a command that times out, and replies
 * saying the server cannot serve (BUSY, LOADING, OOM, READONLY, MASTERDOWN, CLUSTERDOWN, …). A reply
 * refusing one command (`ERR …`, `WRONGTYPE …`: its arguments, its key, a script error) is that call's
 * failure only: it is passed to the caller, but it does not count towards opening the circuit (a
 * half-open trial it answers closes it: the store is up). Otherwise one tenant's config that Redis
 * refuses would open the circuit every tenant's calls on the replica go through.
 */
export interface StoreCircuit {
  /** Open, and no trial due yet: don't call the store. */
  readonly skipping: boolean;
  /** Open or half-open (the store is considered down). */
  readonly degraded: boolean;
  /** Runs a store call through the breaker; rejects with its error, or a BrokenCircuitError when open. */
  run<T>(call: () => Promise<T>): Promise<T>;
}

export interface StoreCircuitOptions {
  /** Consecutive failures that open the circuit (default 3). */
  failures?: number | undefined;
  /** How long an open circuit skips the store before a trial call (default 1,000 ms). */
  halfOpenAfterMs?: number | undefined;
  onOpen?: () => void;
  onClose?: () => void;
}

export type StoreFailureReason = 'circuit_open' | 'refused' | 'error' | 'uncounted';

/**
 * A failed call that says nothing about the store, told so by its caller (a command that timed out
 * queued behind large replies on the connection): passed to the caller as its failure, not counted
 * towards opening the circuit. `cause` is the call's own error.
 */
export class UncountedStoreFailure extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'UncountedStoreFailure';
  }
}

/**
 * A Redis reply refusing this one command (ioredis rejects with a ReplyError carrying the server's
 * message, whose first word is the error code): `ERR` (bad arguments, a script's runtime error) or
 * `WRONGTYPE`. Other codes (BUSY, LOADING, OOM, …) mean the store cannot serve anyone.
 */
export function isCommandRefusal(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError' && /^(?:ERR|WRONGTYPE)\b/.test(error.message);
}

/** ioredis's commandTimeout ran out before the reply came (the command may still run on the server). */
export function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}

/** For metrics: was the call refused by the open circuit, was the command refused, or did the store fail? */
export function storeFailureReason(error: unknown): StoreFailureReason {
  if (error instanceof BrokenCircuitError) return 'circuit_open';
  if (error instanceof UncountedStoreFailure) return 'uncounted';
  return isCommandRefusal(error) ? 'refused' : 'error';
}

export function createStoreCircuit(options: StoreCircuitOptions = {}): StoreCircuit {
  const halfOpenAfterMs = options.halfOpenAfterMs ?? 1_000;
  const breaker = circuitBreaker(
    handleWhen((error) => !isCommandRefusal(error) && !(error instanceof UncountedStoreFailure)),
    {
      halfOpenAfter: halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(options.failures ?? 3),
    },
  );
  let openedAt = 0;
  breaker.onBreak(() => {
    openedAt = Date.now();
    options.onOpen?.();
  });
  breaker.onReset(() => options.onClose?.());
  return {
    get skipping() {
      return breaker.state === CircuitState.Open && Date.now() - openedAt < halfOpenAfterMs;
    },
    get degraded() {
      return breaker.state === CircuitState.Open || breaker.state === CircuitState.HalfOpen;
    },
    run: (call) => breaker.execute(call),
  };
}
