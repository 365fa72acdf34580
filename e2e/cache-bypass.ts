import { eventually, type HttpResponse, sleep } from './harness.js';

/** A gateway replica the tests send a tenant's requests to (LoneGateway). */
interface Replica {
  request(subdomain: string, pathname: string): Promise<HttpResponse>;
}

/**
 * Until `replica`'s response cache serves the tenant of `subdomain`: it answers BYPASS until it has loaded
 * the tenant's purge generations from Redis. `path` must be on one of the tenant's cached routes.
 */
export async function whenCacheServes(replica: Replica, subdomain: string, path: string): Promise<void> {
  await eventually(
    `the response cache serves ${subdomain}`,
    async () => (await replica.request(subdomain, path)).headers['x-cache'] !== 'BYPASS',
    { timeoutMs: 30_000 },
  );
}

/**
 * The first answer of `send` the cache did not bypass (or the tenth). A lookup on a loaded machine may
 * BYPASS, as documented (a Redis command past its timeout skips the cache); before each retry `forget`
 * clears what the test counted of the bypassed attempt, so the retried one is counted afresh.
 */
export async function retriedWhileBypassed(
  send: () => Promise<HttpResponse>,
  forget: () => void,
): Promise<HttpResponse> {
  for (let attempt = 1; ; attempt++) {
    const response = await send();
    if (response.headers['x-cache'] !== 'BYPASS' || attempt >= 10) return response;
    forget();
    await sleep(200);
  }
}
