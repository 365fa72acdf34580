/** How a host no tenant holds is answered. */
export interface UnknownHostAnswer {
  status: 404 | 503;
  code: 'tenant_not_found' | 'config_loading';
  message: string;
  headers?: Readonly<Record<string, string>>;
}

const NOT_FOUND: UnknownHostAnswer = {
  status: 404,
  code: 'tenant_not_found',
  message: 'no tenant is served on this host',
};

/**
 * Until the replica has read the whole snapshot topic once (it is starting and catching up, or has not
 * reached Kafka since it started, serving its snapshot file or nothing), a host it does not know may
 * well be a tenant's: 503 with Retry-After, which clients and load balancers retry (on another
 * replica), rather than a 404 that a shared cache may keep and that tells the client the API is gone.
 */
const LOADING: UnknownHostAnswer = {
  status: 503,
  code: 'config_loading',
  message: 'this gateway replica is still loading the tenants’ configuration; retry shortly',
  headers: { 'retry-after': '1' },
};

/** The code of the 503 a host gets while the replica is loading (the access log samples it like a 4xx). */
export const CONFIG_LOADING_CODE = LOADING.code;

/** `configLoaded`: whether the replica has read every tenant's config (caught up with the topic once). */
export function unknownHostAnswer(configLoaded: boolean): UnknownHostAnswer {
  return configLoaded ? NOT_FOUND : LOADING;
}
