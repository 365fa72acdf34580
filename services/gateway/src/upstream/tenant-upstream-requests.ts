/**
 * The requests one tenant has in flight to its origins on this replica, at most `limit` of them
 * (GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT; 0 = no limit), Envoy's per-cluster max_requests made per
 * tenant. Each holds at most one origin socket; without the bound a tenant whose origins accept and never
 * answer, with clients keeping requests in flight (HTTP/2 streams), held a socket per request over all
 * its targets' pools until the replica ran out of file descriptors and failed every tenant.
 *
 * One object per tenant, handed from each compiled version of the tenant to the next (gateway-config-store),
 * so the requests a version started still count after it is replaced; the request path reaches it from
 * the exchange's tenant, without a lookup.
 */
export class TenantUpstreamRequests {
  #inFlight = 0;

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Counts one more request, or false (nothing counted) when the tenant holds its limit; then `end()` once. */
  tryStart(): boolean {
    if (this.limit > 0 && this.#inFlight >= this.limit) return false;
    this.#inFlight++;
    return true;
  }

  end(): void {
    this.#inFlight--;
  }
}
