import type { EventMetadata, EventStore, NewEvent } from '@vantageedge/shared/event-store/port';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { KeyRing } from '@vantageedge/shared/tls/private-key-envelope';
import type { Authorizer } from '../auth/authorize.js';
import type { Caller, TenantAccess } from '../auth/caller.js';
import type { CachePurger } from '../cache-purge/cache-purger.js';
import { type DomainError, forbidden, notFound } from '../domain/errors.js';
import type { CustomDomainDeps } from './custom-domain-commands.js';
import type { LegacyUserStreams } from './legacy-user-streams.js';
import type { SnapshotGuard } from './snapshot-guard.js';
import type { StreamFolds } from './stream-folds.js';
import { loadTenant } from './tenant-directory.js';
import type { TenantLimits, TenantLock, TenantResourceCounts } from './tenant-limits.js';

/** What every command needs from the process: ports only, no transport and no database driver. */
export interface CommandDeps {
  store: EventStore;
  /** Write authorization, decided from the event log (commands/tenant-directory.ts). */
  authorizer: Authorizer;
  clock: () => Date;
  /** API_KEY_PEPPER: the HMAC key of stored API key hashes. */
  apiKeyPepper: string;
  /** API_KEY_ROTATION_GRACE_SECONDS: how long a rotated key keeps working by default. */
  rotationGraceSeconds: number;
  /** Seals certificates' private keys (CERTIFICATE_ENCRYPTION_KEY); absent → certificate uploads answer 503. */
  certificateKeyRing?: KeyRing | undefined;
  /** Users recorded before they moved into their tenant's stream (older logs). */
  legacyUsers: LegacyUserStreams;
  /** Reaches every gateway replica's response cache; absent → purges fail as `unavailable`. */
  /** ORIGIN_BLOCKED_CIDRS and the platform's listeners: literal origin/JWKS addresses are checked here. */
  originAddressPolicy: OriginAddressPolicy;
  /** The `iss` of the platform's Clerk instance, which no tenant's OIDC provider may be. */
  clerkIssuer?: string | undefined;
  cachePurger?: CachePurger | undefined;
  /** Base domains and TXT lookups of the custom-domain commands; absent → defaults, system resolvers. */
  customDomains?: CustomDomainDeps | undefined;
  /** How much configuration one tenant may create; default DEFAULT_TENANT_LIMITS. */
  tenantLimits?: TenantLimits | undefined;
  /** RESERVED_SUBDOMAINS: labels no tenant may take as its subdomain; default DEFAULT_RESERVED_SUBDOMAINS. */
  reservedSubdomains?: readonly string[] | undefined;
  /** A tenant's live routes, origins, API keys and certificates, for the limits. */
  resourceCounts: TenantResourceCounts;
  /**
   * The tenant's config change lock, which the creates a counted limit bounds take for their count and
   * append (tenant-limits.ts, `withCountedCreate`). Absent (tests of single commands): not taken.
   */
  tenantLock?: TenantLock | undefined;
  /**
   * The tenant's gateway snapshot after a command stays within the snapshot budget (snapshot-guard.ts);
   * handleCommand checks it for every command. Absent: not checked.
   */
  snapshotGuard?: SnapshotGuard | undefined;
  /**
   * Set for the steps of one config apply or rollback: the document's origins, routes and targets were
   * counted against TENANT_MAX_ORIGINS, TENANT_MAX_ROUTES and TENANT_MAX_TARGETS as a whole before the
   * first step (a step may pass through more, adding before it removes; the read models would not yet
   * count the plan's earlier steps), and its routes' matches compared with each other.
   */
  countedByPlan?: boolean | undefined;
  /** Set for the steps of one config apply or rollback run: its tenant stream's folds (stream-folds.ts). */
  streamFolds?: StreamFolds | undefined;
  /**
   * The tenant's admin command limits, given per request (absent: no limit): the command is charged once
   * write access to a tenant is granted, its events' bytes just before they are appended.
   */
  commandBudget?: CommandBudget | undefined;
}

/** Counts a command against its tenant's rate limits; throws `rate_limited` when the tenant is over one. */
export interface CommandBudget {
  charge(tenantId: string): Promise<void>;
  /** The bytes of events about to be appended on the tenant (`eventBytes`). */
  chargeEventBytes(tenantId: string, bytes: number): Promise<void>;
  /**
   * Charges now the bytes the rest of the request appends on the tenant (a config apply's steps, as
   * rehearsed), so its steps are not charged again and none is refused part-way.
   */
  prepayEventBytes(tenantId: string, bytes: number): Promise<void>;
}

/**
 * What one event takes in PostgreSQL besides its JSON: its row and index entries in the event log, and
 * its audit-log row with that table's indexes. Measured: a cache purge (285 bytes of JSON) 1.9 KB, a
 * route update (930 bytes) 3.6 KB, a route created by a config apply (940 bytes) 3.7 KB: the JSON twice
 * (the log's copy and the audit log's) and up to ~1.9 KB.
 */
export const STORED_BYTES_PER_EVENT = 2048;

/**
 * What events take in the database: their data and metadata as JSON, once in the event log and once in
 * the audit log, and each event's rows and index entries (STORED_BYTES_PER_EVENT): the JSON alone
 * understates a small event several times over, so the event bytes budget would not bound the database's
 * growth for the cheapest commands, nor for a config apply of many small events (one command).
 */
export function eventBytes(events: readonly NewEvent[]): number {
  let bytes = 0;
  for (const event of events) {
    const json =
      Buffer.byteLength(JSON.stringify(event.data) ?? '') + Buffer.byteLength(JSON.stringify(event.metadata));
    bytes += 2 * json + STORED_BYTES_PER_EVENT;
  }
  return bytes;
}

/**
 * Charges events about to be appended to their tenant's event bytes budget. Events of no tenant yet
 * (a tenant's creation, by a platform admin) are not charged.
 */
export async function chargeEventBytes(
  budget: CommandBudget | undefined,
  events: readonly NewEvent[],
): Promise<void> {
  const tenantId = events[0]?.metadata.tenant_id;
  if (budget && tenantId) await budget.chargeEventBytes(tenantId, eventBytes(events));
}

/**
 * An If-Match other than `*`: the revisions its strong entity-tags name, one of which must be the
 * resource's current revision. A weak tag never matches (RFC 9110 §13.1.1), so a list of weak tags
 * only names none. (`*` is no revision to compare: every command that reads If-Match answers 404 for
 * a resource that does not exist, before it compares, as RFC 9110 §13.2.1 has it.)
 */
export type ExpectedRevisions = readonly bigint[];

/** Who asks, within which request, under which precondition. */
export interface CommandContext {
  caller: Caller;
  requestId: string;
  /** The revisions the client's If-Match names, when it sent one other than `*`. */
  ifMatch?: ExpectedRevisions | undefined;
  /** The event that caused this command's events (a config rollback's ConfigRolledBack), if any. */
  causationId?: string | undefined;
  /** The Idempotency-Key attempt the command runs as (http/idempotency.ts), when the request sent a key. */
  idempotencyAttempt?: string | undefined;
  /** The Idempotency-Key attempt whose events this command undoes (its events say so), if any. */
  undoesAttempt?: string | undefined;
}

/** The outcome of a command: the resource, its revision (the ETag) and the position of its events. */
export interface CommandOutcome<Resource> {
  resource: Resource;
  revision: bigint;
  /** Position of the last event appended, or of the stream's last event when nothing changed. */
  position: bigint;
}

export function eventMetadata(
  deps: Pick<CommandDeps, 'clock'>,
  ctx: CommandContext,
  tenantId: string | null,
): EventMetadata {
  return {
    actor: ctx.caller.userId,
    tenant_id: tenantId,
    correlation_id: ctx.requestId,
    causation_id: ctx.causationId ?? null,
    occurred_at: deps.clock().toISOString(),
    schema_version: 1,
    ...(ctx.idempotencyAttempt === undefined ? {} : { idempotency_attempt: ctx.idempotencyAttempt }),
    ...(ctx.undoesAttempt === undefined ? {} : { idempotency_undoes: ctx.undoesAttempt }),
  };
}

/** The tenant of a resource's state, for event metadata (null only for a stream never written). */
export function tenantOf(state: { status: string; data?: { tenant_id: string } }): string | null {
  return state.data?.tenant_id ?? null;
}

const RANK: Record<TenantAccess, number> = { none: 0, read: 1, write: 2 };

/** How a tenant named by a request field (`tenant_id`) that the caller cannot see is answered. */
const unknownTenant = (): DomainError => notFound('tenant', 'tenant_id');

/** How a tenant named by the path (`/tenants/:id/config/…`) that the caller cannot see is answered. */
export const unknownTenantOfPath = (): DomainError => notFound('tenant', 'id');

/**
 * Fails unless the caller has `needed` access on the tenant; else the access the caller has. A tenant
 * the caller may not see at all is one that does not exist: `unseen` is the very answer the command
 * gives for an id no one has (default: the tenant of a `tenant_id` field is not found), so no caller
 * learns which tenants, or which resources of other tenants, exist. A tenant the caller sees without
 * the rank needed (a viewer writing) is `forbidden`. A deleted tenant takes its resources with it: no
 * one, platform admins included, writes to it or to any of them, and the answer is `unseen`'s, as for
 * what never existed (so a command on a deleted tenant's resource appends nothing). Write access granted
 * counts the command against the tenant's command limit (never a tenant the caller may not write, so
 * no one spends another tenant's budget).
 */
export async function requireAccess(
  deps: Pick<CommandDeps, 'authorizer' | 'commandBudget' | 'streamFolds' | 'store'>,
  caller: Caller,
  tenantId: string,
  needed: Exclude<TenantAccess, 'none'>,
  unseen: () => DomainError = unknownTenant,
): Promise<Exclude<TenantAccess, 'none'>> {
  const access = await deps.authorizer.access(caller, tenantId, deps.streamFolds);
  if (access === 'none') throw unseen();
  if (RANK[access] < RANK[needed]) throw forbidden('you have read-only access to this tenant');
  if (needed === 'write') {
    const tenant = await loadTenant(deps.store, tenantId, deps.streamFolds);
    if (tenant.status !== 'active') throw unseen();
    await deps.commandBudget?.charge(tenantId);
  }
  return access;
}

export function requirePlatformAdmin(caller: Caller, what: string): void {
  if (!caller.isPlatformAdmin) throw forbidden(`only platform admins may ${what}`);
}

/** Who may see a command's stored answer again (an Idempotency-Key replay). */
export interface ReplayGuard {
  /** The tenant the answer is about. */
  tenantId: string | null;
  /** Creating tenants is for platform admins only, and so is seeing such an answer again. */
  platformAdminOnly: boolean;
}

const lostAnswer = () => forbidden('you may no longer see the answer to this request');

/**
 * Before an Idempotency-Key replay: the caller must still be allowed to run the command that produced
 * the stored answer (which may hold an API key's plaintext). An answer stored without a guard (before
 * guards were recorded) is only replayed to platform admins.
 */
export async function authorizeReplay(
  deps: Pick<CommandDeps, 'authorizer' | 'store'>,
  caller: Caller,
  guard: ReplayGuard,
): Promise<void> {
  if (caller.isPlatformAdmin) return;
  if (guard.platformAdminOnly || guard.tenantId === null) throw lostAnswer();
  // A replay appends nothing: it is not counted as a command. The caller's own earlier request named
  // the tenant, so saying that access was lost tells it nothing new.
  await requireAccess(
    { authorizer: deps.authorizer, store: deps.store },
    caller,
    guard.tenantId,
    'write',
    lostAnswer,
  );
}
