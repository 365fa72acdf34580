import { AsyncLocalStorage } from 'node:async_hooks';

/** Ids that every log line written while handling a request carries. */
export interface RequestContext {
  requestId?: string;
  traceId?: string;
  tenantId?: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return requestContext.run(context, fn);
}
