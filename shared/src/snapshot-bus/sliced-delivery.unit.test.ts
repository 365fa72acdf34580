import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { EventLoopSlices } from '../process/event-loop-slices.js';
import { decodeSnapshotRecord, decodingSnapshotRecord, encodeSnapshotMessage } from './codec.js';
import type { SnapshotMessage } from './port.js';
import { RouteValidationCache } from './route-validation-cache.js';
import { decodeAndDeliver } from './sliced-delivery.js';
import { sampleSnapshot, snapshotMessage } from './testing.js';

const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

function largeRecord() {
  const encoded = encodeSnapshotMessage(
    snapshotMessage(sampleSnapshot(randomUUID(), 5n, { routes: 100 })),
    MAX_MESSAGE_BYTES,
  );
  return { key: encoded.key, value: encoded.value, headers: { ...encoded.headers } };
}

describe('decoding and delivering a record in slices of the event loop', () => {
  it('lets other work run while a large snapshot is decoded, then delivers what decodeSnapshotRecord gives', async () => {
    const record = largeRecord();
    const log: string[] = [];
    const other = () => {
      log.push('other work');
      if (!log.includes('delivered')) setImmediate(other);
    };
    setImmediate(other);
    let delivered: SnapshotMessage | undefined;
    const delivery = await decodeAndDeliver(
      decodingSnapshotRecord(record, undefined, new RouteValidationCache()),
      record.key,
      {
        onMessage: (message) => {
          log.push('delivered');
          delivered = message;
        },
      },
      () => true,
      new EventLoopSlices({ budgetMs: 0 }),
    );

    expect(delivery).toBe('delivered');
    expect(log.indexOf('delivered')).toBeGreaterThan(10);
    const direct = decodeSnapshotRecord(record, undefined, new RouteValidationCache());
    expect(direct.ok && direct.message).toEqual(delivered);
  });

  it('waits for a handler that works in slices before it settles', async () => {
    const record = largeRecord();
    const log: string[] = [];
    await decodeAndDeliver(
      decodingSnapshotRecord(record),
      record.key,
      {
        onMessage: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          log.push('applied');
        },
      },
      () => true,
    );
    log.push('next record');
    expect(log).toEqual(['applied', 'next record']);
  });

  it('delivers nothing once the subscription is closed meanwhile', async () => {
    const record = largeRecord();
    let open = true;
    setImmediate(() => {
      open = false;
    });
    const onMessage = vi.fn();
    const delivery = await decodeAndDeliver(
      decodingSnapshotRecord(record, undefined, new RouteValidationCache()),
      record.key,
      { onMessage },
      () => open,
      new EventLoopSlices({ budgetMs: 0 }),
    );

    expect(delivery).toBe('stopped');
    expect(onMessage).not.toHaveBeenCalled();
  });

  it('reports an invalid record to onInvalidMessage', async () => {
    const record = { ...largeRecord(), value: Buffer.from('{"tenant_id": 1}') };
    record.headers['ve-encoding'] = 'json';
    const onInvalidMessage = vi.fn();
    const delivery = await decodeAndDeliver(
      decodingSnapshotRecord(record),
      record.key,
      { onMessage: vi.fn(), onInvalidMessage },
      () => true,
    );
    expect(delivery).toBe('delivered');
    expect(onInvalidMessage).toHaveBeenCalledWith({
      tenantId: record.key,
      reason: expect.stringContaining('invalid snapshot'),
    });
  });
});
