import { silentLogger } from '@vantageedge/shared/observability/logger';
import { describe, expect, it } from 'vitest';
import { createUnverifiedRecordLog } from './unverified-record-log.js';

describe('the log line of a snapshot record refused for its signature', () => {
  // The record key is whatever a topic writer sent: up to the topic's message size.
  it('names a tenant id of any length by its start only', () => {
    const lines: Array<Record<string, unknown> | undefined> = [];
    const log = createUnverifiedRecordLog(
      {
        ...silentLogger,
        error: (_message: string, fields?: Record<string, unknown>) => void lines.push(fields),
      },
      () => 0,
    );
    const key = `${'k'.repeat(1024 * 1024)}\n{"level":"info"}`;
    log({ tenantId: key, reason: 'missing', detail: 'unsigned' });
    log({ tenantId: 'c3c3c3c3-0000-4000-8000-000000000001', reason: 'missing', detail: 'unsigned' });

    expect(String(lines[0]?.['tenant_id']).length).toBeLessThanOrEqual(200);
    expect(lines[0]?.['tenant_id_bytes']).toBe(Buffer.byteLength(key));
    expect(lines[1]?.['tenant_id']).toBe('c3c3c3c3-0000-4000-8000-000000000001');
  });
});
