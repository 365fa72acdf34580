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
  if (headers) for (const name in headers) res.setHeader(name, headers[name]!);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
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
