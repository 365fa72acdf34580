import { apiKeyEntry, snapshotCertificate, tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { z } from 'zod';
import { CHANGE_KINDS, CONFIG_RESOURCES } from '../config-history/config-diff.js';

/**
 * The answers of the config endpoints, for /openapi.json: a tenant's config at a position is its
 * gateway snapshot without the API keys' hashes, plus the position it was asked at.
 */

const position = z.string().regex(/^[0-9]+$/);

export const tenantConfigResource = tenantSnapshot.omit({ schema_version: true, api_keys: true }).extend({
  position: position.meta({ description: 'the event position asked for (default: the newest)' }),
  api_keys: z.array(apiKeyEntry.omit({ key_hash: true })),
  certificates: z.array(snapshotCertificate.omit({ private_key: true })),
});

const fieldChange = z.object({ field: z.string(), from: z.unknown(), to: z.unknown() });
export const configChange = z.object({
  resource: z.enum(CONFIG_RESOURCES),
  id: z.string().nullable().meta({ description: 'null for a resource the plan creates' }),
  name: z.string(),
  change: z.enum([...CHANGE_KINDS, 'restored']),
  fields: z.array(fieldChange),
  before: z.unknown(),
  after: z.unknown(),
});

export const configChangeResult = z.object({
  tenant_id: z.uuid(),
  version: position.meta({
    description: 'the config version after the command (before it, for a plan or dry run)',
  }),
  position: position.meta({ description: 'the position of the last event appended (or the newest one)' }),
  changes: z.array(configChange),
  to_position: position.optional().meta({ description: 'rollback: the position whose config was restored' }),
});

export const configDiff = z.object({
  tenant_id: z.uuid(),
  from: z.object({ position, version: position }),
  to: z.object({ position, version: position }),
  changes: z.array(configChange),
});

export const configDocumentAnswer = z.object({
  tenant_id: z.uuid(),
  position,
  version: position,
  document: z.record(z.string(), z.unknown()).meta({
    description: 'the tenant document (format, tenant, origins, routes), as /schemas/tenant-config.json',
  }),
});

export const configHistoryEntry = z.object({
  position,
  occurred_at: z.iso.datetime({ offset: true }),
  actor: z.string(),
  event_type: z.string(),
  resource_type: z.string(),
  resource_id: z.string(),
  correlation_id: z.string(),
  causation_id: z.string().nullable(),
  summary: z.string(),
});
