import type { ServerResponse } from 'node:http';
import type { GatewayExchange } from './exchange.js';

/**
 * The gateway's one error shape: `{"error":{"code","message"}}` with a machine-readable code.
 * Bodies are built by string concatenation of JSON-escaped parts (no object allocation per error).
 */
export function writeError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `{"error":{"code":${JSON.stringify(code)},"message":${JSON.stringify(message)}}}`;
  const head = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  try {
    if (headers) for (const name in headers) res.setHeader(name, headers[name]!);
    res.writeHead(status, head);
  } catch {
    // node refused a header set before the error (often the very one the error is about): it stays on
    // the response, so the error goes out without them, or the client is cut off. An error answer that
    // threw would escape the request listener and take the replica down.
    if (!writeBareHead(res, status, head)) return;
  }
  try {
    res.end(body);
  } catch {
    res.destroy();
  }
}

/** The error's head with no header but X-Request-Id; false when even that failed (the response is destroyed). */
function writeBareHead(res: ServerResponse, status: number, head: Record<string, string | number>): boolean {
  try {
    const requestId = res.getHeader('x-request-id');
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.writeHead(status, typeof requestId === 'string' ? { ...head, 'x-request-id': requestId } : head);
    return true;
  } catch {
    res.destroy();
    return false;
  }
}

/** The gateway answers the request itself with an error: recorded on the exchange (logs, metrics, span). */
export function failExchange(
  exchange: GatewayExchange,
  status: number,
  code: string,
  message: string,
  headers?: Readonly<Record<string, string>>,
): void {
  exchange.errorCode = code;
  writeError(exchange.res, status, code, message, headers);
}
