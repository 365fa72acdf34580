/**
 * How a purge reaches every gateway replica's cache. With Redis, the purge protocol shared with the
 * gateways (@vantageedge/shared/cache-purge: a generation bump plus pub/sub) is the adapter; in the
 * single-process dev mode the gateway's in-process cache is handed over directly. Both satisfy this.
 */
export type { CachePurger } from '@vantageedge/shared/cache-purge/purge-protocol';
