/**
 * A request as the explain differentials send it twice: to a gateway as raw bytes (a repeated header
 * line is really repeated) and to `POST /tenants/{id}/explain` as its JSON (a list for a repeated line).
 */

/** One request: its header lines as sent (name as spelled, value), Host and Connection apart. */
export interface ExplainedRequest {
  method: string;
  host: string;
  path: string;
  query: string;
  lines: Array<readonly [string, string]>;
}

/** Fills in what a case names by placeholder (the tenant's API key for `KEY`, say). */
export type ValueFiller = (value: string) => string;

/** The request's bytes, each header line as given (X-Request-Id tells the origins' records apart). */
export function requestBytes(request: ExplainedRequest, requestId: string, fill: ValueFiller): Buffer {
  const lines = [
    `${request.method} ${request.path}${request.query} HTTP/1.1`,
    `Host: ${request.host}`,
    ...request.lines.map(([name, value]) => `${name}: ${fill(value)}`),
    `X-Request-Id: ${requestId}`,
    'Connection: close',
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** The same request as explain's JSON: a field's lines (names in any case) as one list, in order sent. */
export function explainBody(
  request: ExplainedRequest,
  fill: ValueFiller,
  clientIp = '127.0.0.1',
): Record<string, unknown> {
  const lines = new Map<string, string[]>();
  for (const [name, value] of request.lines) {
    const lower = name.toLowerCase();
    lines.set(lower, [...(lines.get(lower) ?? []), fill(value)]);
  }
  return {
    method: request.method,
    host: request.host,
    path: request.path + request.query,
    headers: Object.fromEntries(
      [...lines].map(([name, values]) => [name, values.length === 1 ? values[0]! : values]),
    ),
    client_ip: clientIp,
  };
}
