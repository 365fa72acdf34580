import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { logPages, type TenantEventSource } from '../config-history/tenant-events.js';

/** A host a command gives a tenant: a verified custom domain or a subdomain (lower case). */
export interface HostClaim {
  kind: 'custom_domain' | 'subdomain';
  host: string;
  field: string;
}

const CLAIM_EVENTS = {
  custom_domain: { types: ['CustomDomainVerified'], key: 'domain' },
  subdomain: { types: ['TenantCreated', 'TenantUpdated'], key: 'subdomain' },
} as const;

/**
 * Tenants other than `tenantId` that ever claimed the host up to `head`. The audit log finds them up
 * to the read models' checkpoint; the events after it (the audit log trails the log by milliseconds,
 * or by much more while its projector is down) are read from the log itself, so a claim is never
 * missed because the read models are behind.
 */
export async function formerHostClaimants(
  source: TenantEventSource,
  tenantId: string,
  claim: HostClaim,
  head: bigint,
): Promise<string[]> {
  const { types, key } = CLAIM_EVENTS[claim.kind];
  // Read first: audit rows at or below the checkpoint were committed with it.
  const checkpoint = await readReadModelsPosition(source.pool);
  const { rows } = await source.pool.query<{ tenant_id: string }>(
    `select distinct tenant_id::text from ${qualified(READ_MODELS_SCHEMA, 'audit_log')}
      where event_type = any($1::text[]) and lower(data->>$2) = $3
        and tenant_id is not null and tenant_id <> $4::uuid`,
    [types, key, claim.host, tenantId],
  );
  const claimants = new Set(rows.map((row) => row.tenant_id));

  const claimantOf = (event: RecordedEvent): string | null => {
    if (!isControlPlaneEvent(event) || !(types as readonly string[]).includes(event.type)) return null;
    const data = event.data as Record<string, unknown>;
    const host = data[key];
    const owner = data['tenant_id'];
    if (typeof host !== 'string' || host.toLowerCase() !== claim.host) return null;
    return typeof owner === 'string' && owner !== tenantId ? owner : null;
  };
  for await (const page of logPages(source, checkpoint, head)) {
    for (const event of page.events) {
      const owner = claimantOf(event);
      if (owner !== null) claimants.add(owner);
    }
  }
  return [...claimants];
}
