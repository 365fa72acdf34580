import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocketClose } from '../pipeline/exchange.js';
import { closeFrame } from './close-frame.js';
import type { FrameRelay } from './frame-relay.js';
import type { UpgradeRecorder } from './upgrade-record.js';
import type { WebSocketAdmission } from './websocket-admission.js';

/** A switched upgrade: the client's connection and the origin's, relayed both ways. */
export interface ProxiedConnection {
  readonly client: Duplex;
  readonly upstream: Socket;
  /** Each way's relay: the gateway's close frame goes only between two of its frames. */
  readonly toClient: FrameRelay;
  readonly toUpstream: FrameRelay;
  /** The gateway has begun closing it: sent its close frames (or is finishing a frame to send them). */
  closing: boolean;
  /** What admitted it; each snapshot that keeps it records its API key's expiry there. */
  admission: WebSocketAdmission;
  /** The tenant version the upgrade was admitted under. */
  readonly admittedVersion: bigint;
  readonly requestId: string;
  /** Its upgrade's record: the access-log line is written when the connection ends. */
  readonly record: UpgradeRecorder;
  /** Who ended it and with which close code: the first close frame either way, else 1006 (none). */
  ending: WebSocketClose | undefined;
}

/** RFC 6455 §7.4.1: a connection that ended without a close frame. */
export const CLOSE_ABNORMAL = 1006;

/**
 * How long a closing connection may take: a frame in flight finished, then the peers' answers to our
 * close frames; past it both sockets are destroyed.
 */
export const CLOSE_GRACE_MS = 1_000;

/** Records the first ending of the connection: a close frame either way, the gateway's own, or a side's connection closing. */
export function endedBy(
  connection: ProxiedConnection,
  by: WebSocketClose['by'],
  code: number,
): WebSocketClose {
  connection.ending ??= { by, code };
  return connection.ending;
}

/**
 * A close frame to both sides on a frame boundary (a frame in flight finished first), then the sockets
 * end; destroyed if that and the peers' closing take longer than the grace.
 */
export function closeConnection(connection: ProxiedConnection, code: number, reason: string): void {
  if (connection.closing) return;
  connection.closing = true;
  endedBy(connection, 'gateway', code);
  const { client, upstream } = connection;
  connection.toClient.stop();
  connection.toUpstream.stop();
  connection.toClient.closeWith(closeFrame(code, reason, false));
  connection.toUpstream.closeWith(closeFrame(code, reason, true));
  setTimeout(() => {
    client.destroy();
    upstream.destroy();
  }, CLOSE_GRACE_MS).unref();
}

/**
 * One side's connection closed (it ended it or dropped it) while the gateway was not closing the
 * connection: the other side's connection ends once what that side sent before — waiting at the gateway
 * for a receiver behind on reading, or for an HTTP/2 stream's flow-control window — has gone out, as
 * nginx and Envoy flush an upgraded connection whose peer closed; it is cut if its peer has not closed
 * within the close grace. What the other side still sends has nowhere to go: it is read and dropped, so
 * its own end is seen.
 */
export function closeAfterLastFrames(connection: ProxiedConnection, closedSide: 'client' | 'origin'): void {
  const [closed, other] =
    closedSide === 'client'
      ? [connection.client, connection.upstream]
      : [connection.upstream, connection.client];
  closed.destroy();
  if (other.destroyed) return;
  connection.toClient.stop();
  connection.toUpstream.stop();
  // An HTTP/2 stream's writableLength does not count what waits for its window: ended, never destroyed at once.
  if (!other.writableEnded) other.end();
  const cut = setTimeout(() => other.destroy(), CLOSE_GRACE_MS);
  cut.unref();
  other.once('close', () => clearTimeout(cut));
}
