import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { errors } from 'undici';
import type { PickContext, UpstreamLease, UpstreamOutcome, UpstreamSet } from '../types.js';

export type OriginBehaviour = 'ok' | 'fail' | 'hang';

/**
 * A real HTTP origin on 127.0.0.1 (port 0) for upstream tests. Requests answer with the origin's
 * name; `traffic` and `health` switch what ordinary requests and the health path do: answer,
 * fail with 500/503, or accept the request and never answer.
 */
export interface TestOrigin {
  readonly name: string;
  readonly url: string;
  traffic: OriginBehaviour;
  health: OriginBehaviour;
  /** Ordinary (non-health) requests received. */
  readonly requests: number;
  readonly healthRequests: number;
  close(): Promise<void>;
}

export async function startTestOrigin(name: string, healthPath = '/health'): Promise<TestOrigin> {
  let requests = 0;
  let healthRequests = 0;
  const state = { traffic: 'ok' as OriginBehaviour, health: 'ok' as OriginBehaviour };
  const server = http.createServer((request, response) => {
    const isHealth = request.url === healthPath;
    if (isHealth) healthRequests++;
    else requests++;
    const behaviour = isHealth ? state.health : state.traffic;
    if (behaviour === 'hang') return; // connection stays open, no answer
    response.statusCode = behaviour === 'ok' ? 200 : isHealth ? 503 : 500;
    response.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    get traffic() {
      return state.traffic;
    },
    set traffic(value) {
      state.traffic = value;
    },
    get health() {
      return state.health;
    },
    set health(value) {
      state.health = value;
    },
    get requests() {
      return requests;
    },
    get healthRequests() {
      return healthRequests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The test origins live on 127.0.0.1: an address policy that lets the upstream sets reach them. */
export const loopbackOriginsAllowed = (): OriginAddressPolicy =>
  new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK);

export const pickContext = (overrides: Partial<PickContext> = {}): PickContext => ({
  clientIp: '198.51.100.7',
  path: '/resource',
  headers: {},
  ...overrides,
});

export interface Exchange {
  /** Name of the origin that answered, or undefined when the request failed. */
  readonly servedBy: string | undefined;
  readonly outcome: UpstreamOutcome;
}

/**
 * What the pipeline does with a lease: a real request through the target's pool, then exactly one
 * release with the outcome. Undefined when the set had no target to offer.
 */
export async function exchange(
  set: UpstreamSet,
  context: PickContext = pickContext(),
  signal?: AbortSignal,
): Promise<Exchange | undefined> {
  const lease = set.acquire(context);
  return lease === undefined ? undefined : exchangeOn(lease, context, signal);
}

/** The request and release for a lease already acquired. */
export async function exchangeOn(
  lease: UpstreamLease,
  context: PickContext,
  signal?: AbortSignal,
): Promise<Exchange> {
  let result: Exchange;
  try {
    const response = await lease.target.dispatcher.request({
      method: 'GET',
      path: lease.target.basePath + context.path,
      signal: signal ?? null,
    });
    const body = await response.body.text();
    result = {
      servedBy: response.statusCode < 500 ? body : undefined,
      outcome: { kind: 'response', status: response.statusCode },
    };
  } catch (error) {
    result = { servedBy: undefined, outcome: classify(error) };
  }
  lease.release(result.outcome);
  return result;
}

function classify(error: unknown): UpstreamOutcome {
  if (
    error instanceof errors.RequestAbortedError ||
    (error instanceof Error && error.name === 'AbortError')
  ) {
    return { kind: 'cancelled' };
  }
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) {
    return { kind: 'timeout' };
  }
  if (error instanceof errors.ConnectTimeoutError) return { kind: 'connect_error' };
  if (error instanceof Error && 'code' in error && error.code === 'ECONNREFUSED')
    return { kind: 'connect_error' };
  return { kind: 'reset' };
}
