import { describe, expect, it, vi } from 'vitest';
import { parseSettings, SettingsError } from '../settings/load-settings.js';
import { EventStoreDbEventStore } from './eventstoredb/eventstoredb-event-store.js';
import { createEventStore, eventStoreConfigFromSettings } from './factory.js';
import { InMemoryEventStore } from './in-memory/in-memory-event-store.js';
import { eventStoreSettings } from './settings.js';
import { UpcasterRegistry } from './upcasting.js';

const pool = {} as never; // never used by the memory/eventstoredb branches

describe('event store settings and factory', () => {
  it('defaults to PostgreSQL', () => {
    const settings = parseSettings(eventStoreSettings, {});
    expect(settings.EVENT_STORE).toBe('postgres');
    expect(eventStoreConfigFromSettings(settings, { pool })).toEqual({ kind: 'postgres', pool });
  });

  it('rejects an unknown EVENT_STORE by name', () => {
    expect(() => parseSettings(eventStoreSettings, { EVENT_STORE: 'mongo' })).toThrow(/EVENT_STORE/);
  });

  it('rejects a malformed EVENTSTOREDB_URL by name', () => {
    expect(() =>
      parseSettings(eventStoreSettings, { EVENT_STORE: 'eventstoredb', EVENTSTOREDB_URL: 'http://x' }),
    ).toThrow(/EVENTSTOREDB_URL/);
  });

  it('refuses an EVENTSTOREDB_URL option the client does not know, without writing the password anywhere', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const url = 'esdb://admin:planted-password@127.0.0.1:2113?tls=false&tlsverify=false';
      const error = (() => {
        try {
          parseSettings(eventStoreSettings, { EVENT_STORE: 'eventstoredb', EVENTSTOREDB_URL: url });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(SettingsError);
      expect((error as SettingsError).problems).toEqual([
        { setting: 'EVENTSTOREDB_URL', issue: expect.stringContaining('at character 55') },
      ]);
      expect(JSON.stringify((error as SettingsError).problems)).not.toContain('planted-password');
      expect(warn.mock.calls.flat().join('\n')).not.toContain('planted-password');
    } finally {
      warn.mockRestore();
    }
  });

  it('writes the client’s warning about an EVENTSTOREDB_URL without the connection string', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const url = 'esdb://admin:planted-password@127.0.0.1:2113?tls=true&tlsVerifyCert=false';
      const store = createEventStore(
        eventStoreConfigFromSettings(
          parseSettings(eventStoreSettings, { EVENT_STORE: 'eventstoredb', EVENTSTOREDB_URL: url }),
          { pool },
        ),
      );
      await store.close();
      const written = warn.mock.calls.flat().join('\n');
      expect(written).toContain('"tlsVerifyCert" is not currently supported');
      expect(written).not.toContain('planted-password');
    } finally {
      warn.mockRestore();
    }
  });

  it('requires EVENTSTOREDB_URL when EVENT_STORE=eventstoredb', () => {
    const settings = parseSettings(eventStoreSettings, { EVENT_STORE: 'eventstoredb' });
    const error = (() => {
      try {
        eventStoreConfigFromSettings(settings, { pool });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).problems).toEqual([
      { setting: 'EVENTSTOREDB_URL', issue: 'is required when EVENT_STORE=eventstoredb' },
    ]);
  });

  it('builds the adapter the settings name', async () => {
    const memory = createEventStore(
      eventStoreConfigFromSettings(parseSettings(eventStoreSettings, { EVENT_STORE: 'memory' }), { pool }),
    );
    expect(memory).toBeInstanceOf(InMemoryEventStore);
    const esdb = createEventStore(
      eventStoreConfigFromSettings(
        parseSettings(eventStoreSettings, {
          EVENT_STORE: 'eventstoredb',
          EVENTSTOREDB_URL: 'esdb://127.0.0.1:2113?tls=false',
        }),
        { pool },
      ),
    );
    expect(esdb).toBeInstanceOf(EventStoreDbEventStore);
    await Promise.all([memory.close(), esdb.close()]);
  });
});

describe('UpcasterRegistry', () => {
  it('refuses two upcasters for the same type and version', () => {
    const registry = new UpcasterRegistry().register('TenantCreated', 1, (e) => e);
    expect(() => registry.register('TenantCreated', 1, (e) => e)).toThrow(/TenantCreated v1/);
  });

  it('refuses a rename that would loop or rename a type twice', () => {
    const registry = new UpcasterRegistry().renameType('A', 'B').renameType('B', 'C');
    expect(() => registry.renameType('C', 'A')).toThrow(/loop/);
    expect(() => registry.renameType('A', 'D')).toThrow(/already renamed/);
  });
});
