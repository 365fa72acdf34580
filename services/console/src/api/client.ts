/**
 * The admin API from the browser: same origin as the console (the control plane serves both), a
 * Clerk session token on every call, and the API's one error shape turned into an ApiProblem.
 */

export interface ErrorDetail {
  field: string;
  issue: string;
}

/** A non-2xx answer of the admin API (or a network failure, status 0). */
export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: readonly ErrorDetail[];

  constructor(status: number, code: string, message: string, details: readonly ErrorDetail[] = []) {
    super(message);
    this.name = 'ApiProblem';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * Returns a current session token (Clerk refreshes short-lived tokens; a pasted one is as given), or
 * null once there is no session to take one from (the Clerk session ended while the page was open).
 */
export type TokenSource = () => Promise<string | null>;

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | undefined>;
}

/**
 * If-Match for a command on an item as a list showed it (its `revision`): the API refuses it with 412
 * once someone else changed or replaced the item since, instead of acting on what the person never saw.
 */
export function ifMatchListed(item: { revision: string }): Record<string, string> {
  return { 'if-match': `"${item.revision}"` };
}

/** The admin API's largest page (MAX_PAGE_SIZE of its list endpoints). */
const LIST_PAGE_SIZE = 200;

export class ApiClient {
  private readonly token: TokenSource;
  private readonly onUnauthenticated: (problem: ApiProblem) => void;
  /**
   * The event position of the newest command this console sent: reads carry it as X-Min-Position,
   * so a list shown after a change includes the change (the control plane waits for its projector).
   */
  private lastPosition: string | undefined;

  constructor(token: TokenSource, onUnauthenticated: (problem: ApiProblem) => void) {
    this.token = token;
    this.onUnauthenticated = onUnauthenticated;
  }

  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.send<T>('GET', path, options).then((response) => response.body);
  }

  /**
   * Every item of a list endpoint, page after page: a table, a picker or a name lookup built from
   * the first page alone would leave out everything past it (the newest items) without a word.
   */
  async getAll<T>(path: string, options: RequestOptions = {}): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.get<Page<T>>(path, {
        ...options,
        query: { ...options.query, limit: String(LIST_PAGE_SIZE), cursor },
      });
      items.push(...page.data);
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
    return items;
  }

  send<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>(method, path, options);
  }

  private remember(position: string): void {
    if (this.lastPosition === undefined || BigInt(position) > BigInt(this.lastPosition)) {
      this.lastPosition = position;
    }
  }

  private async request<T>(method: string, path: string, options: RequestOptions): Promise<ApiResponse<T>> {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(name, value);
    }
    const token = await this.token();
    if (token === null) {
      // As a 401 would: the person signs in again instead of every page failing the same way.
      const ended = new ApiProblem(401, 'session_ended', 'the Clerk session has ended: sign in again');
      this.onUnauthenticated(ended);
      throw ended;
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      ...(method === 'GET' && this.lastPosition !== undefined ? { 'x-min-position': this.lastPosition } : {}),
      ...options.headers,
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        // Live numbers (quota counters, rollout) change without a new revision: never from the HTTP cache.
        cache: 'no-store',
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (error) {
      throw new ApiProblem(0, 'network', `the control plane did not answer (${String(error)})`);
    }
    const text = await response.text();
    const body: unknown = text ? parseJson(text) : null;
    if (!response.ok) {
      const problem = toProblem(response.status, body);
      if (problem.status === 401) this.onUnauthenticated(problem);
      throw problem;
    }
    const position = response.headers.get('x-event-position');
    if (method !== 'GET' && position && /^\d+$/.test(position)) this.remember(position);
    return { status: response.status, headers: response.headers, body: body as T };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toProblem(status: number, body: unknown): ApiProblem {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    const details = Array.isArray(error.details)
      ? error.details.filter(
          (d): d is ErrorDetail =>
            typeof d === 'object' && d !== null && typeof d.field === 'string' && typeof d.issue === 'string',
        )
      : [];
    return new ApiProblem(status, error.code, error.message, details);
  }
  return new ApiProblem(status, 'unexpected', `the control plane answered ${status}`);
}

/** A page of a list endpoint. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}
