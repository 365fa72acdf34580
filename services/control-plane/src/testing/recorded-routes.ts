import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { routeConfig } from '@vantageedge/shared/domain/gateway-config';
import type { EventStore } from '@vantageedge/shared/event-store/port';

/**
 * A route of `tenantId` recorded as an earlier release created it, before a rule its commands now
 * enforce (appended straight to the store, past the deciders); answers the event's position.
 */
export async function recordRouteAsAnEarlierReleaseDid(
  store: EventStore,
  tenantId: string,
  route: Record<string, unknown>,
): Promise<string> {
  const { id, ...recorded } = routeConfig.parse(route);
  const { position } = await store.appendToStream(streamName.route(id), [
    {
      type: 'RouteCreated',
      data: { ...recorded, route_id: id, tenant_id: tenantId },
      metadata: {
        actor: 'user_platform',
        tenant_id: tenantId,
        correlation_id: randomUUID(),
        causation_id: null,
        occurred_at: new Date().toISOString(),
        schema_version: 1,
      },
    },
  ]);
  return position.toString();
}
