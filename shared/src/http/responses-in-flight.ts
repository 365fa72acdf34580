import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The response node is writing on an HTTP/1.1 connection, if any: the answer to the oldest request of
 * the connection not answered yet (node queues the answers to the requests pipelined behind it).
 */
export function responseInFlight(socket: Duplex): ServerResponse | null | undefined {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
}

/**
 * Calls `then` once the responses to every request received before on this connection are out whole
 * (at once when none is in flight). Never when the connection closes or ends first (a response that was
 * the connection's last).
 */
export function afterResponsesInFlight(socket: Duplex, then: () => void): void {
  const response = responseInFlight(socket);
  if (!response) {
    then();
    return;
  }
  const onClose = () => response.off('finish', onFinish);
  // After node's own `finish` listener, which hands the connection to the next queued response.
  const onFinish = () => {
    socket.off('close', onClose);
    if (socket.writable) afterResponsesInFlight(socket, then);
  };
  response.once('finish', onFinish);
  socket.once('close', onClose);
}
