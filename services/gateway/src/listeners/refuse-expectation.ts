import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { writeError } from '../pipeline/errors.js';

/**
 * The `checkExpectation` listener of every listener: node answers `Expect: 100-continue` itself and hands
 * a request with any other expectation here instead of to the gateway. No such expectation can be met:
 * 417 in the gateway's error shape (without a listener node answers a bare 417, no error code).
 */
export function refuseExpectation(
  _req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
): void {
  writeError(
    res as ServerResponse,
    417,
    'expectation_failed',
    'the gateway meets no expectation but 100-continue (Expect header)',
  );
}
