import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import type { TestGateway } from './gateway-harness.js';

/** The gateway's access-log line for the request to `path`, once it is written. */
export async function accessLineOf(gateway: TestGateway, path: string): Promise<Record<string, unknown>> {
  const isIt = (line: Record<string, unknown>) => line['kind'] === 'access' && line['path'] === path;
  await eventually(`the access-log line of ${path}`, () => gateway.logLines.some(isIt), 10_000);
  return gateway.logLines.find(isIt)!;
}

/** The gateway's access-log lines of the request whose id is `requestId`, as written so far. */
export function accessLinesOfRequest(
  gateway: TestGateway,
  requestId: string,
): Array<Record<string, unknown>> {
  return gateway.logLines.filter((line) => line['kind'] === 'access' && line['request_id'] === requestId);
}
