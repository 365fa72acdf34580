import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { answerLastOnConnection } from '@vantageedge/shared/http/last-on-connection';
import { bodyBytesOf } from '../http/body-bytes.js';
import { readOnlySmallRests } from '../http/unread-body-rest.js';
import { ignoredUpgradeOffer } from '../http/upgrade-offer.js';
import type { RecordListenerRefusal } from '../observability/listener-refusals.js';
import { writeError } from '../pipeline/errors.js';
import { listenerRefusalOf } from './listener-refusal-of.js';

/**
 * The `checkExpectation` listener of every listener: node answers `Expect: 100-continue` itself and hands
 * a request with any other expectation here instead of to the gateway. No such expectation can be met:
 * 417 in the gateway's error shape (without a listener node answers a bare 417, no error code), recorded
 * with `record`.
 */
export function refuseExpectation(
  record?: RecordListenerRefusal,
): (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void {
  // Its body is not read: past a short rest, the connection closes after the answer, as after any
  // early refusal (node would otherwise read the whole declared or chunked body to reach the next request).
  const refuse = readOnlySmallRests((req, res) => {
    if (ignoredUpgradeOffer(req)) answerLastOnConnection(req, res);
    writeError(
      res as ServerResponse,
      417,
      'expectation_failed',
      'the gateway meets no expectation but 100-continue (Expect header)',
    );
    record?.(listenerRefusalOf(req, 417, 'expectation_failed', bodyBytesOf(res)));
  });
  // HTTP/2 requests pass through unchanged (readOnlySmallRests watches HTTP/1.x bodies only).
  return refuse as (
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ) => void;
}
