import { relayedAfterSwitch } from '../http/body-bytes.js';
import type { GatewayExchange, WebSocketClose } from '../pipeline/exchange.js';
import { type ExchangeRecordSinks, recordExchange } from '../pipeline/record-exchange.js';

/** Records one upgrade request exactly once, as the pipeline's finishExchange records every other request. */
export interface UpgradeRecorder {
  /**
   * The answer is out (a refusal, a relayed origin answer) or the client left before any: recorded
   * as its status (499 when nothing was answered). Nothing once the upgrade switched.
   */
  answered(): void;
  /**
   * At the 101: its request metrics (duration to the switch, status class 1xx), usage and SERVER span,
   * which end with the handshake; its access-log line waits for the connection's end.
   */
  switched(): void;
  /**
   * The switched connection ended (either side closed it, or the gateway did): its access-log line,
   * with the whole connection's duration, the frames relayed each way and how it ended.
   */
  ended(close: WebSocketClose, bytesFromClient: number, bytesToClient: number): void;
}

/**
 * Records an upgrade as any request — its access-log line, its request metrics (duration by status class,
 * upstream time, an answer of 400 or more as an error response), usage and its SERVER span — except that
 * the line of a switched upgrade is written when its connection ends, as Envoy logs an upgraded stream
 * and Kong's log phase runs for a WebSocket: the line describes the connection, not its handshake.
 */
export function upgradeRecorder(exchange: GatewayExchange, sinks: ExchangeRecordSinks): UpgradeRecorder {
  let recorded = false;
  let switched = false;
  return {
    answered() {
      if (recorded || switched) return;
      recorded = true;
      // An upgrade the client left before any answer is 499, and not in usage.
      const res = exchange.res;
      recordExchange(exchange, res.headersSent ? res.statusCode : 0, sinks);
    },
    switched() {
      if (recorded || switched) return;
      switched = true;
      // The handshake has no bodies: what follows the 101 is counted when the connection ends.
      relayedAfterSwitch(exchange.req, exchange.res, 0, 0);
      recordExchange(exchange, 101, { metrics: sinks.metrics, usage: sinks.usage });
      // The connection may stay open through many config versions: its line needs only the ids.
      exchange.forgetCompiledConfig();
    },
    ended(close, bytesFromClient, bytesToClient) {
      if (recorded || !switched) return;
      recorded = true;
      exchange.webSocketClose = close;
      relayedAfterSwitch(exchange.req, exchange.res, bytesFromClient, bytesToClient);
      sinks.accessLog?.record(exchange, 101, performance.now() - exchange.startedAt);
    },
  };
}
