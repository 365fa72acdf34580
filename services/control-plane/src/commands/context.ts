import type { EventMetadata, EventStore } from '@vantageedge/shared/event-store/port';
import type { KeyRing } from '@vantageedge/shared/tls/private-key-envelope';
import type pg from 'pg';
import type { Authorizer } from '../auth/authorize.js';
import type { Caller, TenantAccess } from '../auth/caller.js';
import type { CachePurger } from '../cache-purge/cache-purger.js';
import { ApiError, forbidden } from '../http/errors.js';
import type { CustomDomainDeps } from './custom-domain-commands.js';
import type { TenantLimits } from './tenant-limits.js';

/** What every command needs from the process. */
export interface CommandDeps {
  store: EventStore;
  pool: pg.Pool;
  authorizer: Authorizer;
  clock: () => Date;
  /** API_KEY_PEPPER: the HMAC key of stored API key hashes. */
  apiKeyPepper: string;
  /** API_KEY_ROTATION_GRACE_SECONDS: how long a rotated key keeps working by default. */
  rotationGraceSeconds: number;
  /** Seals certificates' private keys (CERTIFICATE_ENCRYPTION_KEY); absent → certificate uploads answer 503. */
  certificateKeyRing?: KeyRing | undefined;
  /** Reaches every gateway replica's response cache; absent → purge endpoints answer 503. */
  cachePurger?: CachePurger | undefined;
  /** Base domains and TXT lookups of the custom-domain commands; absent → defaults, system resolvers. */
  customDomains?: CustomDomainDeps | undefined;
  /** How much configuration one tenant may create; default DEFAULT_TENANT_LIMITS. */
  tenantLimits?: TenantLimits | undefined;
}

/** Who asks, within which request, under which precondition. */
export interface CommandContext {
  caller: Caller;
  requestId: string;
  /** The If-Match revision, when the client sent one. */
  ifMatch?: bigint | undefined;
}

/** The outcome the HTTP layer reports: the resource, its stream revision (ETag) and event position. */
export interface CommandOutcome<Resource> {
  resource: Resource;
  revision: bigint;
  /** Position of the last event appended, or of the stream's last event when nothing changed. */
  position: bigint;
}

export function eventMetadata(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string | null,
): EventMetadata {
  return {
    actor: ctx.caller.userId,
    tenant_id: tenantId,
    correlation_id: ctx.requestId,
    causation_id: null,
    occurred_at: deps.clock().toISOString(),
    schema_version: 1,
  };
}

/** The tenant of a resource's state, for event metadata (null only for a stream never written). */
export function tenantOf(state: { status: string; data?: { tenant_id: string } }): string | null {
  return state.data?.tenant_id ?? null;
}

const RANK: Record<TenantAccess, number> = { none: 0, read: 1, write: 2 };

/** Throws 403 unless the caller has `needed` access on the tenant. */
export async function requireAccess(
  deps: CommandDeps,
  caller: Caller,
  tenantId: string,
  needed: Exclude<TenantAccess, 'none'>,
): Promise<void> {
  const access = await deps.authorizer.access(caller, tenantId);
  if (RANK[access] < RANK[needed]) {
    throw forbidden(
      access === 'read' ? 'you have read-only access to this tenant' : 'you have no access to this tenant',
    );
  }
}

export function requirePlatformAdmin(caller: Caller, what: string): void {
  if (!caller.isPlatformAdmin) throw new ApiError(403, 'forbidden', `only platform admins may ${what}`);
}
