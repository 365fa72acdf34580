import { CliError, EXIT, exitCodeOfStatus } from './exit-codes.js';

/** The admin API over HTTP: the CLI's only way into VantageEdge. */

export interface ApiResponse<Body = unknown> {
  status: number;
  headers: Headers;
  body: Body;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  /** Statuses answered as a response instead of an error (e.g. 202 of a rollout wait is a success). */
  accept?: readonly number[];
}

interface ErrorShape {
  error?: { code?: string; message?: string; details?: Array<{ field?: string; issue?: string }> };
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request<Body = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<Body>> {
    const url = new URL(path, this.baseUrl);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        EXIT.unavailable,
        `cannot reach the admin API at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      );
    }
    const text = await response.text();
    let body: unknown = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (response.ok || options.accept?.includes(response.status)) {
      return { status: response.status, headers: response.headers, body: body as Body };
    }
    const shape = (typeof body === 'object' && body !== null ? body : {}) as ErrorShape;
    const code = shape.error?.code ?? `http_${response.status}`;
    const message =
      shape.error?.message ?? (typeof body === 'string' ? body.slice(0, 200) : response.statusText);
    const details = (shape.error?.details ?? []).map((detail) => ({
      field: detail.field ?? '',
      issue: detail.issue ?? '',
    }));
    throw new CliError(exitCodeOfStatus(response.status), `${response.status} ${code}: ${message}`, details);
  }

  get<Body = unknown>(path: string, query?: RequestOptions['query']): Promise<ApiResponse<Body>> {
    return this.request<Body>('GET', path, query === undefined ? {} : { query });
  }

  /** Every item of a paginated list (`{ data, next_cursor }`). */
  async list<Item = Record<string, unknown>>(
    path: string,
    query: RequestOptions['query'] = {},
  ): Promise<Item[]> {
    const items: Item[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.get<{ data: Item[]; next_cursor: string | null }>(path, {
        limit: 200,
        ...query,
        cursor,
      });
      items.push(...page.body.data);
      cursor = page.body.next_cursor ?? undefined;
    } while (cursor !== undefined);
    return items;
  }
}
