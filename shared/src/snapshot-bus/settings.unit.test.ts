import { describe, expect, it } from 'vitest';
import { parseSettings } from '../settings/load-settings.js';
import { problemsOf } from '../testing/settings-problems.js';
import { snapshotBusSettings } from './settings.js';

describe('KAFKA_BROKERS', () => {
  it('takes host names and IPv4 addresses with their ports', () => {
    expect(
      parseSettings(snapshotBusSettings, { KAFKA_BROKERS: 'kafka-a:9092, 10.0.0.2:9093' }).KAFKA_BROKERS,
    ).toEqual(['kafka-a:9092', '10.0.0.2:9093']);
  });

  // kafkajs splits a seed broker at its first colon: `[::1]:9092` would be host `[`, and the client
  // would retry an unreachable broker for ever instead of the service stopping at start.
  it('refuses an IPv6 literal, naming it and what to write instead', () => {
    for (const value of ['[::1]:59092', 'kafka-a:9092,[fd00::2]:9093']) {
      expect(
        problemsOf(() => parseSettings(snapshotBusSettings, { KAFKA_BROKERS: value })),
        value,
      ).toEqual([
        {
          setting: 'KAFKA_BROKERS',
          issue: expect.stringMatching(/IPv6 .*\[(::1|fd00::2)\].*host name/),
        },
      ]);
    }
  });
});
