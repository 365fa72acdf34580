import type { CacheEntry } from './cache-entry.js';

/** What a leader's fill produced: the response and the key it belongs to (a variant key if it varies). */
export interface Filled {
  readonly entry: CacheEntry;
  readonly key: string;
  /** A stale entry served while another replica refreshes it (stale-while-revalidate). */
  readonly stale?: boolean;
}

/**
 * What a flight's followers get when its leader will fill nothing they could take (a HEAD going to the
 * origin) or did not end its fill within coalesceTimeoutMs (its client reading slowly holds the origin's
 * body back): they look again, and the first of them fills the key anew, the others follow it.
 */
export const LOOK_AGAIN = Symbol('look again');

/** What a flight ends with: the fill, nothing (go on without it), or LOOK_AGAIN. */
export type FlightEnd = Filled | null | typeof LOOK_AGAIN;

export interface Flight {
  readonly key: string;
  /**
   * When its lookup began (the response cache's clock): a request that comes after a purge heard since
   * then does not follow it (its answer may be the one the purge removed), it fills the key anew.
   */
  readonly startedAt: number;
  promise: Promise<FlightEnd>;
  resolve: (end: FlightEnd) => void;
  /** Ends the flight of a leader that never calls store/abandon; cleared when the flight ends. */
  giveUp: NodeJS.Timeout;
  /** What `giveUp` also lets go of: the leader's lease across replicas, which its new leader needs. */
  onGiveUp?: (() => void) | undefined;
  /** Requests that have waited for it: a fill its client holds back is handed over only if some did. */
  followers: number;
}

/** The fills in flight on this replica, one per key (the lookups read `flights` directly). */
export interface FillFlights {
  /** The flight each key's lookups follow: the latest one started for it. */
  readonly flights: Map<string, Flight>;
  /**
   * Claims `key` for a leader: concurrent lookups of it follow its flight. A flight the key had (one
   * a purge since made unfit to follow) goes on for the requests already following it.
   */
  startFlight(key: string, startedAt: number): Flight;
  /** Ends `flight`, waking its followers with what it filled (null: go on without it; LOOK_AGAIN). */
  finishFlight(flight: Flight, end: FlightEnd): void;
  /** How the flight ended, or LOOK_AGAIN if it does not end within coalesceTimeoutMs. */
  waitFor(flight: Flight): Promise<FlightEnd>;
  /** Ends every flight under way, replaced ones included: their followers go on without them (close). */
  finishAll(): void;
}

/** What a finished flight holds in place of its promise: the response it filled is not kept with it. */
const FINISHED: Promise<FlightEnd> = Promise.resolve(null);

/**
 * Concurrent misses for a key coalesce behind the leader's flight and are woken with what it filled;
 * a follower waits at most `coalesceTimeoutMs`, a flight whose leader never ends it lasts as long.
 */
export function createFillFlights(coalesceTimeoutMs: number): FillFlights {
  const flights = new Map<string, Flight>();
  /** Flights another replaced as their key's that have not ended: close ends them too. */
  const replaced = new Set<Flight>();

  const startFlight = (key: string, startedAt: number): Flight => {
    let resolve: (end: FlightEnd) => void = () => {};
    const promise = new Promise<FlightEnd>((r) => {
      resolve = r;
    });
    // A leader that never calls store/abandon must not block the key forever.
    const giveUp = setTimeout(() => {
      flight.onGiveUp?.();
      finishFlight(flight, LOOK_AGAIN);
    }, coalesceTimeoutMs).unref();
    const flight: Flight = { key, startedAt, promise, resolve, giveUp, followers: 0 };
    const previous = flights.get(key);
    if (previous !== undefined) replaced.add(previous);
    flights.set(key, flight);
    return flight;
  };

  const finishFlight = (flight: Flight, end: FlightEnd) => {
    // A flight another one replaced is no longer the key's, and still wakes its own followers.
    if (flights.get(flight.key) === flight) flights.delete(flight.key);
    else replaced.delete(flight);
    // Its timer would otherwise hold the flight, and through its promise the response, till it fires.
    clearTimeout(flight.giveUp);
    flight.onGiveUp = undefined;
    flight.resolve(end);
    // Its followers hold the promise they wait on; the fill (which its request holds) keeps the flight.
    flight.promise = FINISHED;
    flight.resolve = () => {};
  };

  const waitFor = (flight: Flight): Promise<FlightEnd> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(LOOK_AGAIN), coalesceTimeoutMs);
      void flight.promise.then((end) => {
        clearTimeout(timer);
        resolve(end);
      });
    });

  return {
    flights,
    startFlight,
    finishFlight,
    waitFor,
    finishAll() {
      for (const flight of [...flights.values(), ...replaced]) finishFlight(flight, null);
    },
  };
}
