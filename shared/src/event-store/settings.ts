import { z } from 'zod';
import { SettingsError } from '../settings/load-settings.js';
import { connectionStringProblem } from './eventstoredb/connection-string.js';

/**
 * Settings that choose the event store, for composing into a service's parseSettings shape:
 *   EVENT_STORE       postgres (default) | eventstoredb | memory
 *   EVENTSTOREDB_URL  e.g. esdb://127.0.0.1:2113?tls=false — required when EVENT_STORE=eventstoredb
 * The PostgreSQL adapter uses the service's own pool (DATABASE_URL).
 */
export const eventStoreSettings = {
  EVENT_STORE: z.enum(['postgres', 'eventstoredb', 'memory']).default('postgres'),
  EVENTSTOREDB_URL: z
    .string()
    .refine((value) => /^(esdb|esdb\+discover|kurrentdb|kurrentdb\+discover):\/\//.test(value), {
      message: 'must be an esdb:// connection string such as esdb://127.0.0.1:2113?tls=false',
      abort: true,
    })
    .superRefine((value, ctx) => {
      const problem = connectionStringProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
};

export type EventStoreSettings = {
  EVENT_STORE: 'postgres' | 'eventstoredb' | 'memory';
  EVENTSTOREDB_URL?: string | undefined;
};

/** The cross-field rule a flat env shape cannot express; throws SettingsError naming the setting. */
export function assertEventStoreSettings(settings: EventStoreSettings): void {
  if (settings.EVENT_STORE === 'eventstoredb' && !settings.EVENTSTOREDB_URL) {
    throw new SettingsError([
      { setting: 'EVENTSTOREDB_URL', issue: 'is required when EVENT_STORE=eventstoredb' },
    ]);
  }
}

/**
 * For a service in a process of its own (control plane, projectors, their CLIs): the in-memory store
 * is one process's alone (make dev runs every part in one). Here it would take commands no projector
 * ever sees, hold uniqueness per replica, and lose everything at the next restart.
 */
export function assertEventStoreSharedAcrossProcesses(settings: EventStoreSettings): void {
  if (settings.EVENT_STORE === 'memory') {
    throw new SettingsError([
      {
        setting: 'EVENT_STORE',
        issue:
          'memory is only for make dev (one process): a service of its own needs postgres or eventstoredb, which every other service reads',
      },
    ]);
  }
}
