import type { GatewayExchange } from '../pipeline/exchange.js';
import { type ExchangeRecordSinks, recordExchange } from '../pipeline/record-exchange.js';

/**
 * Records one upgrade request exactly once, as the pipeline's finishExchange records every other
 * request: its access-log line, its request metrics (duration by status class, upstream time, an
 * answer of 400 or more as an error response) and its SERVER span. Call the returned function when the answer is out (a
 * refusal, a relayed origin answer) or the client left first; for a switched upgrade, with 101 at the
 * switch — the line is the upgrade request's; the connection's life is in its `websocket ended` line
 * (WebSocketProxy) and the WebSocket gauges.
 */
export function upgradeRecorder(
  exchange: GatewayExchange,
  sinks: ExchangeRecordSinks,
): (switched?: 101) => void {
  let recorded = false;
  return (switched) => {
    if (recorded) return;
    recorded = true;
    // A switched upgrade counts as its 101, a refusal as its status; an upgrade the client left before
    // any answer as 499, and not in usage.
    const res = exchange.res;
    recordExchange(exchange, switched ?? (res.headersSent ? res.statusCode : 0), sinks);
  };
}
