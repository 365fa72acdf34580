import { EventLoopSlices, runInSlices, type SlicedWork } from '../process/event-loop-slices.js';
import type { DecodeResult } from './codec.js';
import type { SnapshotHandlers } from './port.js';

/** What became of a record: handed to the handlers, skipped (another record of its tenant is newer), or stopped. */
export type Delivery = 'delivered' | 'skipped' | 'stopped';

/**
 * Decodes one record in slices of the event loop (a large tenant's routes take hundreds of
 * milliseconds to validate) and hands the result to the handlers, whose work starts a slice of its
 * own. `stillWanted` is asked after each turn given back (the subscription closed: 'stopped', nothing
 * delivered). The handlers' promise is awaited: the next record waits until this one is applied.
 */
export async function decodeAndDeliver(
  decoding: SlicedWork<DecodeResult | undefined>,
  tenantId: string | null,
  handlers: Pick<SnapshotHandlers, 'onMessage' | 'onInvalidMessage'>,
  stillWanted: () => boolean,
  slices: EventLoopSlices = new EventLoopSlices(),
): Promise<Delivery> {
  const decoded = await runInSlices(decoding, slices, stillWanted);
  if (!decoded.done) return 'stopped';
  if (decoded.value === undefined) return 'skipped';
  if (slices.due()) {
    await slices.next();
    if (!stillWanted()) return 'stopped';
  }
  if (decoded.value.ok) await handlers.onMessage(decoded.value.message);
  else handlers.onInvalidMessage?.({ tenantId, reason: decoded.value.reason });
  return 'delivered';
}
