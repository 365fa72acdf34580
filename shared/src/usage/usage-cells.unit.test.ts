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

  it('refuses a cell PostgreSQL could not store (NUL in a field), so one cell never fails a whole batch', () => {
    expect(decodeUsageCell(encodeUsageCell({ ...cell, userId: 'evil\u0000' }))).toBeNull();
  });

  it('batch ids carry the time they were made; ids without it (older gateways) have none', () => {
    const id = newUsageBatchId('gw-1:8000', 1_796_000_400_123);
    expect(id.startsWith('gw-1:8000:')).toBe(true);
    expect(usageBatchCreatedMs(id)).toBe(1_796_000_400_123);
    expect(usageBatchCreatedMs('gw-1:8000:6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11')).toBeUndefined();
    expect(usageBatchCreatedMs('host:12:6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11')).toBeUndefined();
  });
});
