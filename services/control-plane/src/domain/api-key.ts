import type { ApiKeyState } from '@vantageedge/shared/domain/events';
import { reservation } from '@vantageedge/shared/domain/events';
import type { QuotaPolicy } from '@vantageedge/shared/domain/gateway-config';
import { created, type Decider, type Decision, DomainError, type Lifecycle, live } from './decision.js';

export interface ApiKeyData extends ApiKeyState {
  revoked_at: string | null;
  /** Set by a rotation: the key that replaces this one. */
  replaced_by: string | null;
  /** Set by a rotation: when this key stops working. */
  rotation_expires_at: string | null;
}

export type ApiKey = Lifecycle<ApiKeyData>;

export type ApiKeyCommand =
  | { type: 'IssueApiKey'; key: ApiKeyState }
  | { type: 'RotateApiKey'; replacedBy: string; oldKeyExpiresAt: string }
  | { type: 'RevokeApiKey'; reason: string | null }
  | { type: 'UpdateApiKey'; quota: QuotaPolicy | null; tags: string[] };

function decide(command: ApiKeyCommand, state: ApiKey): Decision {
  switch (command.type) {
    case 'IssueApiKey':
      if (state.status !== 'absent') throw new DomainError('conflict', 'api key already exists');
      return {
        events: [{ type: 'ApiKeyIssued', data: command.key }],
        reservations: { claim: [reservation.apiKeyHash(command.key.key_hash)] },
      };
    case 'RotateApiKey': {
      const key = live(state, 'api key').data;
      if (key.revoked_at !== null) throw new DomainError('conflict', 'a revoked api key cannot be rotated');
      if (key.replaced_by !== null) {
        throw new DomainError('conflict', `api key was already rotated; rotate ${key.replaced_by} instead`);
      }
      return {
        events: [
          {
            type: 'ApiKeyRotated',
            data: {
              api_key_id: key.api_key_id,
              tenant_id: key.tenant_id,
              replaced_by: command.replacedBy,
              old_key_expires_at: command.oldKeyExpiresAt,
            },
          },
        ],
      };
    }
    case 'RevokeApiKey': {
      const key = live(state, 'api key').data;
      if (key.revoked_at !== null) throw new DomainError('conflict', 'api key is already revoked');
      return {
        events: [
          {
            type: 'ApiKeyRevoked',
            data: { api_key_id: key.api_key_id, tenant_id: key.tenant_id, reason: command.reason },
          },
        ],
      };
    }
    case 'UpdateApiKey': {
      const key = live(state, 'api key').data;
      if (key.revoked_at !== null) throw new DomainError('conflict', 'a revoked api key cannot be changed');
      const ids = { api_key_id: key.api_key_id, tenant_id: key.tenant_id };
      const events: Decision['events'] = [];
      if (!sameQuota(key.quota ?? null, command.quota)) {
        events.push({ type: 'ApiKeyQuotaChanged', data: { ...ids, quota: command.quota } });
      }
      if (!sameTags(key.tags ?? [], command.tags)) {
        events.push({ type: 'ApiKeyTagsChanged', data: { ...ids, tags: command.tags } });
      }
      return { events };
    }
  }
}

function sameQuota(a: QuotaPolicy | null, b: QuotaPolicy | null): boolean {
  return (
    a?.requests_per_day === b?.requests_per_day &&
    a?.requests_per_month === b?.requests_per_month &&
    (a === null) === (b === null)
  );
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((tag, i) => tag === b[i]);
}

export const apiKeyDecider: Decider<ApiKey, ApiKeyCommand> = {
  initialState: () => ({ status: 'absent' }),
  evolve(state, event) {
    switch (event.type) {
      case 'ApiKeyIssued':
        return created(
          { ...event.data, revoked_at: null, replaced_by: null, rotation_expires_at: null },
          event.metadata.occurred_at,
        );
      case 'ApiKeyRotated':
        if (state.status === 'absent') return state;
        return {
          ...state,
          data: {
            ...state.data,
            replaced_by: event.data.replaced_by,
            rotation_expires_at: event.data.old_key_expires_at,
          },
          updated_at: event.metadata.occurred_at,
        };
      case 'ApiKeyQuotaChanged':
        if (state.status === 'absent') return state;
        return {
          ...state,
          data: { ...state.data, quota: event.data.quota },
          updated_at: event.metadata.occurred_at,
        };
      case 'ApiKeyTagsChanged':
        if (state.status === 'absent') return state;
        return {
          ...state,
          data: { ...state.data, tags: event.data.tags },
          updated_at: event.metadata.occurred_at,
        };
      case 'ApiKeyRevoked':
        if (state.status === 'absent') return state;
        // A revoked key stays readable (status active) so lists can show revoked_at.
        return {
          ...state,
          data: { ...state.data, revoked_at: event.metadata.occurred_at },
          updated_at: event.metadata.occurred_at,
        };
      default:
        return state;
    }
  },
  decide,
};
