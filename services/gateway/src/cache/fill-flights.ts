import type { CacheEntry } from './cache-entry.js';

/** What a leader's fill produced: the response and the key it belongs to (a variant key if it varies). */
export interface Filled {
  readonly entry: CacheEntry;
  readonly key: string;
  /** A stale entry served while another replica refreshes it (stale-while-revalidate). */
  readonly stale?: boolean;
}

export interface Flight {
  promise: Promise<Filled | null>;
  resolve: (filled: Filled | null) => void;
  /** Ends the flight of a leader that never calls store/abandon; cleared when the flight ends. */
  giveUp: NodeJS.Timeout;
}

/** The fills in flight on this replica, one per key (the lookups read `flights` directly). */
export interface FillFlights {
  readonly flights: Map<string, Flight>;
  /** Claims `key` for a leader: concurrent lookups of it follow its flight. */
  startFlight(key: string): void;
  /** Ends the flight of `key`, waking its followers with what it filled (null: go on without it). */
  finishFlight(key: string, filled: Filled | null): void;
  /** What the flight filled, or null if it does not end within coalesceTimeoutMs. */
  waitFor(flight: Flight): Promise<Filled | null>;
  /** Ends every flight: their followers go on without them (close). */
  finishAll(): void;
}

/**
 * Concurrent misses for a key coalesce behind the leader's flight and are woken with what it filled;
 * a follower waits at most `coalesceTimeoutMs`, a flight whose leader never ends it lasts as long.
 */
export function createFillFlights(coalesceTimeoutMs: number): FillFlights {
  const flights = new Map<string, Flight>();

  const startFlight = (key: string): void => {
    let resolve: (filled: Filled | null) => void = () => {};
    const promise = new Promise<Filled | null>((r) => {
      resolve = r;
    });
    // A leader that never calls store/abandon must not block the key forever.
    const giveUp = setTimeout(() => {
      if (flights.get(key) === flight) finishFlight(key, null);
    }, coalesceTimeoutMs).unref();
    const flight: Flight = { promise, resolve, giveUp };
    flights.set(key, flight);
  };

  const finishFlight = (key: string, filled: Filled | null) => {
    const flight = flights.get(key);
    if (!flight) return;
    flights.delete(key);
    // Its timer would otherwise hold the flight, and through its promise the response, till it fires.
    clearTimeout(flight.giveUp);
    flight.resolve(filled);
  };

  const waitFor = (flight: Flight): Promise<Filled | null> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), coalesceTimeoutMs);
      void flight.promise.then((filled) => {
        clearTimeout(timer);
        resolve(filled);
      });
    });

  return {
    flights,
    startFlight,
    finishFlight,
    waitFor,
    finishAll() {
      for (const key of [...flights.keys()]) finishFlight(key, null);
    },
  };
}
