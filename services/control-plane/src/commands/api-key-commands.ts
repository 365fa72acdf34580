import { randomUUID } from 'node:crypto';
import { apiKeyDisplayPrefix, generateApiKey, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { streamName } from '@vantageedge/shared/domain/events';
import type { QuotaPolicy } from '@vantageedge/shared/domain/gateway-config';
import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import { quotaWindows } from '@vantageedge/shared/usage/quota-windows';
import { type ApiKeyCommand, apiKeyDecider } from '../domain/api-key.js';
import { live } from '../domain/decision.js';
import type {
  CreateApiKeyBody,
  RevokeApiKeyBody,
  RotateApiKeyBody,
  UpdateApiKeyBody,
} from '../schemas/requests.js';
import type { ApiKeyResource, QuotaWindowResource } from '../schemas/resources.js';
import { aggregateFolds } from './aggregate-folds.js';
import { changeResource } from './change-resource.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
} from './context.js';
import { handleCommand, requireIfMatch } from './handle-command.js';
import { requireLiveTenant, requireWritableResource } from './lookups.js';
import { outcomeOf } from './outcome.js';
import { requireRoomFor, requireShortStrings, withCountedCreate } from './tenant-limits.js';
import { apiKeyView } from './views.js';

export type IssuedApiKey = CommandOutcome<
  ApiKeyResource & { key: string; quota_usage: QuotaWindowResource[] | null }
>;

/** A new key's quota periods: nothing used yet (its counters are its own, also after a rotation). */
function unusedQuota(apiKeyId: string, spec: KeyToIssue): QuotaWindowResource[] | null {
  const windows = quotaWindows('', spec.tenant_id, { kind: 'api_key', id: apiKeyId }, spec.quota, Date.now());
  if (windows.length === 0) return null;
  return windows.map((window) => ({
    period: window.period,
    limit: window.limit,
    used: 0,
    remaining: window.limit,
    resets_at: new Date(window.resetsAt).toISOString(),
  }));
}

interface KeyToIssue {
  tenant_id: string;
  name: string;
  scopes: string[];
  expires_at: string | null;
  quota: QuotaPolicy | null;
  tags: string[];
}

/** Generates a key, records only its peppered hash, and returns the plaintext this once. */
async function issue(deps: CommandDeps, ctx: CommandContext, spec: KeyToIssue): Promise<IssuedApiKey> {
  const apiKeyId = randomUUID();
  const key = generateApiKey();
  const result = await handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: streamName.apiKey(apiKeyId),
    decider: apiKeyDecider,
    metadata: () => eventMetadata(deps, ctx, spec.tenant_id),
    command: () => ({
      type: 'IssueApiKey' as const,
      key: {
        api_key_id: apiKeyId,
        ...spec,
        key_hash: hashApiKey(deps.apiKeyPepper, key),
        key_prefix: apiKeyDisplayPrefix(key),
      },
    }),
  });
  const issued = outcomeOf('api key', result, apiKeyView);
  return { ...issued, resource: { ...issued.resource, quota_usage: unusedQuota(apiKeyId, spec), key } };
}

export async function issueApiKey(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateApiKeyBody,
): Promise<IssuedApiKey> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  await requireLiveTenant(deps, body.tenant_id);
  requireShortStrings(deps, body);
  // One canonical form (UTC, milliseconds) in events and responses, whatever offset the client sent.
  const expiresAt = body.expires_at === null ? null : new Date(body.expires_at).toISOString();
  return withCountedCreate(deps, ctx.caller, body.tenant_id, async () => {
    await requireRoomFor(deps, 'api_keys', body.tenant_id);
    return issue(deps, ctx, { ...body, expires_at: expiresAt });
  });
}

/**
 * Rotation: a new key with the same name, scopes and expiry; the old one keeps working for the grace
 * period, and counts against TENANT_MAX_API_KEYS until it ends. The new key is issued first: if
 * recording the rotation then fails (a concurrent rotate or revoke, the tenant's event bytes budget
 * running out between the two), the new key is revoked again, so a failed rotation never leaves the
 * caller without a key, nor a live key no one was shown.
 */
export async function rotateApiKey(
  deps: CommandDeps,
  ctx: CommandContext,
  apiKeyId: string,
  body: RotateApiKeyBody,
): Promise<IssuedApiKey> {
  const stream = streamName.apiKey(apiKeyId);
  const { state: old, revision } = await aggregateFolds.fold(deps.store, stream, apiKeyDecider);
  const { tenant_id: tenantId } = await requireWritableResource(deps, ctx, old, 'api key');
  // A stale If-Match issues nothing (the rotation itself compares it again, against a concurrent change).
  requireIfMatch(ctx.ifMatch, revision);
  const graceSeconds = body.grace_period_seconds ?? deps.rotationGraceSeconds;
  const oldKeyExpiresAt = new Date(deps.clock().getTime() + graceSeconds * 1000).toISOString();
  // Fail fast (revoked, already rotated, deleted) before issuing anything.
  apiKeyDecider.decide({ type: 'RotateApiKey', replacedBy: apiKeyId, oldKeyExpiresAt }, old);
  await requireLiveTenant(deps, tenantId, 'id');

  return withCountedCreate(
    deps,
    ctx.caller,
    tenantId,
    async () => {
      // The key as it is under the lock: a change that held the lock first (its quota, its tags, a
      // revocation) is what the replacement carries on, or the rotation is refused.
      // (withCountedCreate asked the caller's access again.)
      const now = await aggregateFolds.fold(deps.store, stream, apiKeyDecider);
      requireIfMatch(ctx.ifMatch, now.revision);
      apiKeyDecider.decide({ type: 'RotateApiKey', replacedBy: apiKeyId, oldKeyExpiresAt }, now.state);
      const current = live(now.state, 'api key').data;
      // The old key works beside the new one until its grace period ends, so it still counts: without
      // grace a rotation is a swap; with it, the tenant needs room for one more key.
      if (graceSeconds > 0) {
        await requireRoomFor(
          deps,
          'api_keys',
          current.tenant_id,
          'the rotated key counts until its grace period ends: rotate with grace_period_seconds 0, or revoke a key first',
        );
      }
      const replacement = await issue(deps, ctx, {
        tenant_id: current.tenant_id,
        name: current.name,
        scopes: current.scopes,
        expires_at: current.expires_at,
        // The replacement counts against its own quota counters, with the same limits.
        quota: current.quota ?? null,
        tags: current.tags ?? [],
      });
      try {
        await handleCommand({
          store: deps.store,
          snapshotGuard: deps.snapshotGuard,
          commandBudget: deps.commandBudget,
          stream,
          decider: apiKeyDecider,
          ifMatch: ctx.ifMatch,
          metadata: () => eventMetadata(deps, ctx, current.tenant_id),
          command: async (state): Promise<ApiKeyCommand> => {
            await requireWritableResource(deps, ctx, state, 'api key');
            return { type: 'RotateApiKey', replacedBy: replacement.resource.id, oldKeyExpiresAt };
          },
        });
      } catch (error) {
        // Undoes what this request did, so nothing that refused the rotation may refuse it: neither the
        // tenant's event bytes budget nor the loss of the Idempotency-Key (a later request took it over),
        // else the new key would stay live with its plaintext shown to no one. Under the lock this
        // rotation holds already (taking it again would wait for itself).
        const undo = { ...deps, tenantLock: undefined, commandBudget: undefined };
        const { idempotencyAttempt: attempt, ...undoCtx } = ctx;
        // A rotation refused for sure is wholly undone by this revocation: it says so, so that a retry
        // with the request's Idempotency-Key runs the rotation rather than answering it applied.
        const refused = !(error instanceof StoreUnavailableError && error.outcomeUnknown);
        await revokeApiKey(
          undo,
          { ...undoCtx, ifMatch: undefined, undoesAttempt: refused ? attempt : undefined },
          replacement.resource.id,
          { reason: 'rotation failed' },
        ).catch(() => {});
        throw error;
      }
      return replacement;
    },
    'id',
  );
}

export async function revokeApiKey(
  deps: CommandDeps,
  ctx: CommandContext,
  apiKeyId: string,
  body: RevokeApiKeyBody,
): Promise<CommandOutcome<ApiKeyResource>> {
  const result = await changeResource(deps, ctx, {
    stream: streamName.apiKey(apiKeyId),
    decider: apiKeyDecider,
    what: 'api key',
    command: (): ApiKeyCommand => ({ type: 'RevokeApiKey', reason: body.reason ?? null }),
  });
  return outcomeOf('api key', result, apiKeyView);
}

/**
 * Sets, changes or removes (null) a key's request quota, which the gateways enforce from the next
 * snapshot, and/or replaces its tags, which only lists read.
 */
export async function updateApiKey(
  deps: CommandDeps,
  ctx: CommandContext,
  apiKeyId: string,
  body: UpdateApiKeyBody,
): Promise<CommandOutcome<ApiKeyResource>> {
  const result = await changeResource(deps, ctx, {
    stream: streamName.apiKey(apiKeyId),
    decider: apiKeyDecider,
    what: 'api key',
    command: (current): ApiKeyCommand => {
      // Absent: unchanged (the decider appends nothing for the same quota or tags).
      return {
        type: 'UpdateApiKey',
        quota: body.quota === undefined ? (current.quota ?? null) : body.quota,
        tags: body.tags ?? current.tags ?? [],
      };
    },
  });
  return outcomeOf('api key', result, apiKeyView);
}
