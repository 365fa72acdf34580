import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';

/**
 * The circuit breaker every gateway component puts around its shared store (Redis): after
 * `failures` consecutive failed calls the circuit opens and the store is not called for
 * `halfOpenAfterMs`; then one trial call decides (success closes it, failure opens it again). So an
 * outage costs at most one command timeout per period, and recovery needs nobody.
 *
 * cockatiel only moves Open → HalfOpen inside execute(), so while a circuit is open and no trial is
 * due, `skipping` says so synchronously: callers answer without Redis and without even creating a
 * rejected promise per request.
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

export type StoreFailureReason = 'circuit_open' | 'error';

/** For metrics: was the call refused by the open circuit, or did the store fail? */
export function storeFailureReason(error: unknown): StoreFailureReason {
  return error instanceof BrokenCircuitError ? 'circuit_open' : 'error';
}

export function createStoreCircuit(options: StoreCircuitOptions = {}): StoreCircuit {
  const halfOpenAfterMs = options.halfOpenAfterMs ?? 1_000;
  const breaker = circuitBreaker(handleAll, {
    halfOpenAfter: halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(options.failures ?? 3),
  });
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
