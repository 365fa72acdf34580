/**
 * The WebSockets each tenant holds open on this replica (GATEWAY_MAX_WEBSOCKETS_PER_TENANT), counted
 * from the moment an upgrade is admitted toward its origin until its client connection closes, so an
 * upgrade waiting for the origin's answer holds its slot as an open WebSocket does. Without it one
 * tenant's clients, each under GATEWAY_MAX_CONNECTIONS_PER_CLIENT, could hold every
 * GATEWAY_MAX_CONNECTIONS slot with long-lived WebSockets and every other tenant was refused.
 */
export class TenantWebSocketLimit {
  readonly #open = new Map<string, number>();

  /** `limit`: WebSockets per tenant; 0 = no limit. */
  constructor(readonly limit: number) {}

  /** A slot for one of the tenant's WebSockets, or undefined when it holds the limit; release it once. */
  admit(tenantId: string): (() => void) | undefined {
    const held = this.#open.get(tenantId) ?? 0;
    if (this.limit > 0 && held >= this.limit) return undefined;
    this.#open.set(tenantId, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(tenantId) ?? 1) - 1;
      if (left > 0) this.#open.set(tenantId, left);
      else this.#open.delete(tenantId);
    };
  }
}
