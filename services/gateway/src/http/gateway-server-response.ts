import {
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';

type HeaderValue = number | string | readonly string[];

/**
 * node:http's response for the gateway's HTTP/1.1 listeners: headers the gateway sets before the head
 * is written (X-Request-Id, CORS, RateLimit, X-Cache, …) wait in a plain object and go out with the
 * head in one `writeHead(status, headers)`.
 *
 * Stock node:http keeps them in its own table instead, and once that table exists `writeHead` takes
 * the slow path: every header passed to it (all of the origin's) goes through `setHeader` too, with its
 * checks, before the head is built (and checked) again. Measured on one core, that is 3–7 µs per
 * response for X-Request-Id alone and about 10 µs with five CORS/transform headers, on a proxy whose
 * whole cost is 65–110 µs. Names and values are still checked, once, when the head is written.
 *
 * Semantics are node's: a header passed to `writeHead` replaces one set before; names are
 * case-insensitive; after the head is sent, setting a header throws as before.
 */
export class GatewayServerResponse<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {
  /** Lower-case name → value, until the head is written; then what was sent (for getHeader). */
  #headers: Record<string, HeaderValue> | null = null;

  override setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) return super.setHeader(name, value);
    if (typeof name !== 'string' || name === '') return super.setHeader(name, value); // node's error
    this.#headers ??= Object.create(null) as Record<string, HeaderValue>;
    this.#headers[name.toLowerCase()] = value;
    return this;
  }

  override appendHeader(name: string, value: string | readonly string[]): this {
    const current = this.getHeader(name);
    if (current === undefined) return this.setHeader(name, value);
    const before = Array.isArray(current) ? current : [String(current)];
    return this.setHeader(name, before.concat(value));
  }

  override getHeader(name: string): OutgoingHttpHeader | undefined {
    const own = this.#headers?.[name.toLowerCase()];
    return (own as OutgoingHttpHeader | undefined) ?? super.getHeader(name);
  }

  override hasHeader(name: string): boolean {
    return this.#headers?.[name.toLowerCase()] !== undefined || super.hasHeader(name);
  }

  override removeHeader(name: string): void {
    if (this.#headers !== null && !this.headersSent) delete this.#headers[name.toLowerCase()];
    super.removeHeader(name);
  }

  override getHeaderNames(): string[] {
    const own = this.#headers === null ? [] : Object.keys(this.#headers);
    const stock = super.getHeaderNames();
    return stock.length === 0 ? own : [...new Set([...own, ...stock])];
  }

  override getHeaders(): OutgoingHttpHeaders {
    return { ...super.getHeaders(), ...(this.#headers as OutgoingHttpHeaders | null) };
  }

  override writeHead(
    statusCode: number,
    reasonOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    maybeHeaders?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    const pending = this.#headers;
    const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : undefined;
    const given = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    if (pending === null || this.headersSent) {
      return reason === undefined
        ? super.writeHead(statusCode, given)
        : super.writeHead(statusCode, reason, given);
    }
    let headers: OutgoingHttpHeaders | OutgoingHttpHeader[];
    if (given === undefined || given === null) {
      headers = pending as OutgoingHttpHeaders;
    } else if (Array.isArray(given)) {
      // Raw [name, value] pairs: node's own table takes the pending headers (the slow path, rare).
      for (const name in pending) super.setHeader(name, pending[name]!);
      headers = given;
    } else {
      headers = pending as OutgoingHttpHeaders;
      for (const name in given) {
        const value = given[name];
        if (value !== undefined) headers[name.toLowerCase()] = value;
      }
    }
    const result =
      reason === undefined
        ? super.writeHead(statusCode, headers)
        : super.writeHead(statusCode, reason, headers);
    return result;
  }
}
