import { describe, expect, it } from 'vitest';
import {
  decodeUsageCell,
  encodeUsageCell,
  newUsageBatchId,
  OVERFLOW_ID,
  type UsageCell,
  usageBatchCreatedMs,
} from './usage-cells.js';

const cell: UsageCell = {
  tenantId: '6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11',
  routeId: 'b2a1c3d4-0000-4000-8000-000000000001',
  apiKeyId: '',
  userId: 'user_2abc',
  statusClass: '2xx',
  hour: 1_796_000_400,
};

describe('usage cells', () => {
  it('encode and decode each other, the overflow marker included', () => {
    expect(decodeUsageCell(encodeUsageCell(cell))).toEqual(cell);
    const overflow = { ...cell, routeId: OVERFLOW_ID, apiKeyId: OVERFLOW_ID, userId: OVERFLOW_ID };
    expect(decodeUsageCell(encodeUsageCell(overflow))).toEqual(overflow);
  });

  it('counts a user id PostgreSQL cannot index or store as OVERFLOW_ID (totals stay exact): over 200 characters — a 4 KB one exceeds usage_counts_pkey’s btree row — or with control characters, NUL and the separator included', () => {
    for (const userId of [
      'u'.repeat(4_096),
      'u'.repeat(201),
      'evil\u0000',
      'a\u0001b',
      'tab\there',
      'del\u007f',
      'split\u001fby\u001fthe\u001fseparator',
      // Lone surrogates: Redis gets them as U+FFFD, so distinct ids would share one hash field.
      'high\ud800',
      'low\udc00first',
      'reversed\udc00\ud800',
    ]) {
      const label = `${JSON.stringify(userId.slice(0, 40))} (${userId.length} characters)`;
      expect(decodeUsageCell(encodeUsageCell({ ...cell, userId })), label).toEqual({
        ...cell,
        userId: OVERFLOW_ID,
      });
    }
    // What the gateways count as themselves stays itself.
    for (const userId of ['u'.repeat(200), '', OVERFLOW_ID, 'user_2abc|ünïcode ✓', 'emoji \u{1f600} pair'])
      expect(decodeUsageCell(encodeUsageCell({ ...cell, userId }))).toEqual({ ...cell, userId });
  });

  it('counts a route or API key id that is no uuid, "" or "*" (all the gateways write) as OVERFLOW_ID', () => {
    for (const id of ['r'.repeat(4_096), 'not-a-uuid', `${cell.routeId}\u0000`, 'x'.repeat(36)]) {
      expect(decodeUsageCell(encodeUsageCell({ ...cell, routeId: id }))).toEqual({
        ...cell,
        routeId: OVERFLOW_ID,
      });
      expect(decodeUsageCell(encodeUsageCell({ ...cell, apiKeyId: id }))).toEqual({
        ...cell,
        apiKeyId: OVERFLOW_ID,
      });
    }
    const keyed = { ...cell, apiKeyId: '0b7c3a52-1f4e-4c2d-8a9b-6e5f4d3c2b1a' };
    expect(decodeUsageCell(encodeUsageCell(keyed))).toEqual(keyed);
    const noRoute = { ...cell, routeId: '' };
    expect(decodeUsageCell(encodeUsageCell(noRoute))).toEqual(noRoute);
  });

  it('refuses a cell whose tenant id is no uuid or whose hour is no time PostgreSQL stores (it names no tenant or hour to count under), so it never fails a whole batch', () => {
    for (const tenantId of ['-'.repeat(36), `${cell.tenantId}\u0000`, 'acme', ''])
      expect(decodeUsageCell(encodeUsageCell({ ...cell, tenantId }))).toBeNull();
    // new Date(hour × 1000) would throw, or be a year PostgreSQL does not parse (+275760-…).
    for (const hour of [99_999_999_999_999, 253_402_300_800, 8.64e12])
      expect(decodeUsageCell(encodeUsageCell({ ...cell, hour }))).toBeNull();
    expect(decodeUsageCell(encodeUsageCell({ ...cell, hour: 253_402_297_200 }))).toEqual({
      ...cell,
      hour: 253_402_297_200,
    });
  });

  it('batch ids carry the time they were made; ids without it (older gateways) have none', () => {
    const id = newUsageBatchId('gw-1:8000', 1_796_000_400_123);
    expect(id.startsWith('gw-1:8000:')).toBe(true);
    expect(usageBatchCreatedMs(id)).toBe(1_796_000_400_123);
    expect(usageBatchCreatedMs('gw-1:8000:6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11')).toBeUndefined();
    expect(usageBatchCreatedMs('host:12:6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11')).toBeUndefined();
  });
});
