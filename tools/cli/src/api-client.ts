import type { z } from 'zod';
import { checkAdminApiUrl } from './admin-api-url.js';
import { AnswerTooLargeError, MAX_ANSWER_BYTES, readAnswer, sizeText } from './answer-reader.js';
import { type OmittedTenant, page } from './answer-shapes.js';
import { CliError, EXIT, exitCodeOfStatus } from './exit-codes.js';

/** The admin API over HTTP: the CLI's only way into VantageEdge. */

export interface ApiResponse<Body = unknown> {
  status: number;
  headers: Headers;
  body: Body;
  /** The size of the answer's body in bytes. */
  bytes: number;
}

export interface RequestOptions<Shape extends z.ZodType = z.ZodUnknown> {
  /**
   * What a success answer must look like (answer-shapes.ts); an answer of another shape is reported
   * as not the admin API's. Without one, the body is `unknown` to the caller.
   */
  shape?: Shape;
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  /** Statuses answered as a response instead of an error (e.g. 202 of a rollout wait is a success). */
  accept?: readonly number[];
  /**
   * The request changes nothing (a POST that only reads: plan, explain, a dry run), so it may be sent
   * again after a 5xx with Retry-After. GET and HEAD are, and so is a command with an Idempotency-Key.
   */
  readOnly?: boolean;
  /** Seconds the admin API may hold the answer on purpose (`?wait_for_rollout=`), on top of the timeout. */
  holdSeconds?: number;
}

/** How the client waits before a retry; tests give their own (no real sleeps). */
export interface ApiClientOptions {
  /** Waits `ms` milliseconds. */
  sleep?: (ms: number) => Promise<void>;
  /** The time now in milliseconds since the epoch (for a Retry-After that is an HTTP date). */
  now?: () => number;
  /** Tells the person at the terminal why the CLI waits (stderr). */
  notice?: (text: string) => void;
  /** Seconds one attempt may take, headers and body together (`--timeout`, $VANTAGEEDGE_TIMEOUT). */
  timeoutSeconds?: number;
  /** The most read of one answer, and of all pages of one list (tests: less than MAX_ANSWER_BYTES). */
  maxAnswerBytes?: number;
  /** Send the token over plain http to another machine too ($VANTAGEEDGE_ALLOW_PLAIN_HTTP). */
  allowPlainHttp?: boolean;
}

export const DEFAULT_TIMEOUT_SECONDS = 120;
/** The most pages one list reads (2 million items at 200 a page): a list is bounded even in requests. */
export const MAX_PAGES = 10_000;
/** The most items the admin API answers in one page of a list. */
export const MAX_PAGE_SIZE = 200;

/**
 * The parts of an error answer (`{ error: { code, message, details: [{ field, issue }] } }`) that are
 * text, read without trusting its shape: an answer from something that is not the admin API (a proxy,
 * another service) may hold anything there, and the CLI still reports it with its own exit code.
 */
function errorParts(body: unknown): {
  code: string | undefined;
  message: string | undefined;
  details: Array<{ field: string; issue: string }>;
} {
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const error = isObject(body) && isObject(body['error']) ? body['error'] : {};
  const details = Array.isArray(error['details']) ? error['details'] : [];
  return {
    code: text(error['code']),
    message: text(error['message']),
    details: details.filter(isObject).map((detail) => ({
      field: text(detail['field']) ?? '',
      issue: text(detail['issue']) ?? '',
    })),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Where an answer first differs from its shape, and how: `data.0: Invalid input: expected object,
 * received null`. Of shapes that are one of several (a change or a change waited for), the last one's.
 */
function issueText(issues: readonly z.core.$ZodIssue[], at: readonly PropertyKey[] = []): string {
  const issue = issues[0];
  if (!issue) return 'the answer: unexpected';
  const path = [...at, ...issue.path];
  const branch = issue.code === 'invalid_union' ? issue.errors.at(-1) : undefined;
  if (branch && branch.length > 0) return issueText(branch, path);
  return `${path.length === 0 ? 'the answer' : path.map(String).join('.')}: ${issue.message}`;
}

/**
 * The retry policy (README "The CLI"): the admin API says when to come back and the CLI does, with
 * the same request and the same Idempotency-Key, so a retried command is never applied twice.
 *
 * - 429 `admin_rate_limited`: any request (a refused request is not run and spends nothing);
 * - 503 (or any 5xx) with Retry-After, e.g. `store_unavailable`: a request safe to send again — GET,
 *   a read-only POST, or a command with an Idempotency-Key (the key tells the server whether the
 *   first attempt was stored);
 * - 409 with Retry-After on a command with an Idempotency-Key: the key is held by an attempt whose
 *   outcome is not known yet (its lock ends then);
 * - no answer at all (refused, reset) on a command with an Idempotency-Key.
 *
 * A 5xx without Retry-After (500 `internal`, a proxy's 502/504) is not retried: nothing says the next
 * attempt would fare better. At most MAX_ATTEMPTS attempts, each wait at most MAX_WAIT_SECONDS: a
 * Retry-After beyond that is reported at once instead of waited for.
 */
export const MAX_ATTEMPTS = 5;
export const MAX_WAIT_SECONDS = 30;
/** Waits when the server gave no Retry-After (a 429 without one, an unreachable admin API): 1, 2, 4, 8 s. */
const BACKOFF_SECONDS = [1, 2, 4, 8];

/**
 * 409 `idempotency_answer_lost`: the first request with this Idempotency-Key was applied, but its
 * answer was lost (PostgreSQL went away after the commit). The change is there: `position` is the
 * event position of its last event.
 */
export class AnswerLostError extends CliError {
  constructor(
    readonly position: string | null,
    message: string,
  ) {
    super(EXIT.conflict, message);
  }
}

/** RFC 6750's b64token: what an `Authorization: Bearer` header can carry (a JWT always is one). */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** An event position as the admin API writes it (X-Event-Position): a decimal number. */
const EVENT_POSITION = /^\d{1,19}$/;

/** The most of a redirect's Location the CLI prints. */
const MAX_SHOWN_LOCATION = 500;

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retry-After in seconds (delta-seconds or an HTTP date), or undefined when absent or malformed. */
export function retryAfterSeconds(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** Why one attempt failed, and whether (and after how long) the same request may be sent again. */
interface Failure {
  error: CliError;
  /** Seconds to wait before the next attempt; undefined: not retried. */
  waitSeconds: number | undefined;
  /** The server asked for a longer wait than the CLI makes. */
  tooLong?: number;
}

export class ApiClient {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly notice: (text: string) => void;
  private readonly timeoutSeconds: number;
  private readonly maxAnswerBytes: number;

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    options: ApiClientOptions = {},
  ) {
    // Checked here, never left to fetch: its error for a bad header value quotes the whole token.
    if (!BEARER_TOKEN.test(token)) {
      throw new CliError(
        EXIT.usage,
        'the token is not a bearer token (a Clerk session token: letters, digits and - . _ ~ + / =, no spaces or line breaks inside); it is not shown here',
      );
    }
    checkAdminApiUrl(baseUrl, { allowPlainHttp: options.allowPlainHttp ?? false });
    this.sleep = options.sleep ?? realSleep;
    this.now = options.now ?? Date.now;
    this.notice = options.notice ?? (() => {});
    this.timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    this.maxAnswerBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
  }

  async request<Shape extends z.ZodType = z.ZodUnknown>(
    method: string,
    path: string,
    options: RequestOptions<Shape> = {},
  ): Promise<ApiResponse<z.output<Shape>>> {
    const url = new URL(path, this.baseUrl);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const keyed = Object.keys(options.headers ?? {}).some((name) => name.toLowerCase() === 'idempotency-key');
    const safe = keyed || options.readOnly === true || method === 'GET' || method === 'HEAD';
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(method, url, options, { keyed, safe, attempt });
      if (!('error' in outcome)) return this.checked(method, url, outcome, options.shape);
      const { error, waitSeconds, tooLong } = outcome;
      if (tooLong !== undefined) {
        throw new CliError(
          error.exitCode,
          `${error.message} (the admin API asks to retry in ${tooLong} s, longer than the CLI waits: ${MAX_WAIT_SECONDS} s; run the command again later)`,
          error.details,
        );
      }
      if (waitSeconds === undefined) throw error;
      if (attempt >= MAX_ATTEMPTS) {
        throw new CliError(
          error.exitCode,
          `${error.message} (gave up after ${MAX_ATTEMPTS} attempts)`,
          error.details,
        );
      }
      this.notice(
        `vantageedge: ${error.message}; retrying in ${waitSeconds} s (attempt ${attempt + 1} of ${MAX_ATTEMPTS}${keyed ? ', same Idempotency-Key' : ''})`,
      );
      await this.sleep(waitSeconds * 1000);
    }
  }

  /** A success answer as `shape` reads it, or the one-line error that it is not the admin API's. */
  private checked<Shape extends z.ZodType>(
    method: string,
    url: URL,
    answer: ApiResponse,
    shape: Shape | undefined,
  ): ApiResponse<z.output<Shape>> {
    if (!shape) return answer as ApiResponse<z.output<Shape>>;
    const parsed = shape.safeParse(answer.body);
    // The body as it came, not as parsed: -o json/yaml print the admin API's answer in its own order.
    if (parsed.success) return answer as ApiResponse<z.output<Shape>>;
    throw new CliError(
      EXIT.unavailable,
      `the answer of ${this.baseUrl} to ${method} ${url.pathname} is not what the admin API answers (${issueText(parsed.error.issues)}); is that the admin API?`,
    );
  }

  private async attempt(
    method: string,
    url: URL,
    options: RequestOptions<z.ZodType>,
    { keyed, safe, attempt }: { keyed: boolean; safe: boolean; attempt: number },
  ): Promise<ApiResponse | Failure> {
    const backoff = BACKOFF_SECONDS[Math.min(attempt - 1, BACKOFF_SECONDS.length - 1)] ?? 1;
    // One deadline for headers and body: an answer that never ends must not hold the CLI forever.
    const timeoutSeconds = this.timeoutSeconds + (options.holdSeconds ?? 0);
    const deadline = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort();
    }, timeoutSeconds * 1000);
    let response: Response;
    let answer: { text: string; bytes: number };
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
        signal: deadline.signal,
        // Not followed: a redirect would take what the request carries (a tenant document, the
        // credentials of a request to explain; the token too, to the same origin) where it points.
        redirect: 'manual',
      });
      answer = await readAnswer(response, this.maxAnswerBytes);
    } catch (error) {
      deadline.abort(); // an answer read no further: its connection is closed, not left to drain
      if (error instanceof AnswerTooLargeError) {
        return {
          error: new CliError(
            EXIT.unavailable,
            `the answer of ${this.baseUrl} to ${method} ${url.pathname} is larger than ${sizeText(error.limit)}, the most the CLI reads; is that the admin API?`,
          ),
          waitSeconds: undefined,
        };
      }
      if (timedOut) {
        // Not retried: the next attempt would wait as long again; a keyed command is safe to run again.
        return {
          error: new CliError(
            EXIT.unavailable,
            `the admin API at ${this.baseUrl} did not answer ${method} ${url.pathname} within ${timeoutSeconds} s (--timeout, $VANTAGEEDGE_TIMEOUT)`,
          ),
          waitSeconds: undefined,
        };
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return {
        error: new CliError(
          EXIT.unavailable,
          `cannot reach the admin API at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
        ),
        // A command may have arrived before the connection broke: its key makes sending it again safe.
        waitSeconds: keyed ? backoff : undefined,
      };
    } finally {
      clearTimeout(timer);
    }
    const { text, bytes } = answer;
    let body: unknown = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (response.status >= 300 && response.status < 400) {
      return { error: this.redirectRefused(method, url, response), waitSeconds: undefined };
    }
    if (response.ok || options.accept?.includes(response.status)) {
      return { status: response.status, headers: response.headers, body, bytes };
    }
    const parts = errorParts(body);
    const code = parts.code ?? `http_${response.status}`;
    const message = parts.message ?? (typeof body === 'string' ? body.slice(0, 200) : response.statusText);
    const { details } = parts;
    const summary = `${response.status} ${code}: ${message}`;
    if (response.status === 409 && code === 'idempotency_answer_lost') {
      // Printed with the command to read the change: a header that is no event position is not shown.
      const position = response.headers.get('x-event-position');
      return {
        error: new AnswerLostError(
          position !== null && EVENT_POSITION.test(position) ? position : null,
          summary,
        ),
        waitSeconds: undefined,
      };
    }
    const error = new CliError(exitCodeOfStatus(response.status), summary, details);
    const retryAfter = retryAfterSeconds(response.headers.get('retry-after'), this.now());
    const retryable =
      response.status === 429 ||
      (response.status >= 500 && safe && retryAfter !== undefined) ||
      (response.status === 409 && keyed && retryAfter !== undefined);
    if (!retryable) return { error, waitSeconds: undefined };
    if (retryAfter !== undefined && retryAfter > MAX_WAIT_SECONDS) {
      return { error, waitSeconds: undefined, tooLong: retryAfter };
    }
    return { error, waitSeconds: retryAfter ?? backoff };
  }

  private redirectRefused(method: string, url: URL, response: Response): CliError {
    const location = response.headers.get('location');
    let target = '(no Location)';
    if (location !== null) {
      try {
        target = new URL(location, url).toString().slice(0, MAX_SHOWN_LOCATION);
      } catch {
        target = '(an invalid Location)';
      }
    }
    return new CliError(
      EXIT.unavailable,
      `${this.baseUrl} answered ${method} ${url.pathname} with ${response.status}: it redirects to ${target}, and the CLI follows no redirect (the token and what the command sends go to the admin API URL given, nowhere else); is that the admin API? If the redirect is right, log in with its URL instead`,
    );
  }

  get<Shape extends z.ZodType = z.ZodUnknown>(
    path: string,
    shape?: Shape,
    query?: RequestOptions['query'],
  ): Promise<ApiResponse<z.output<Shape>>> {
    return this.request('GET', path, {
      ...(shape === undefined ? {} : { shape }),
      ...(query === undefined ? {} : { query }),
    });
  }

  /**
   * Every item of a paginated list (`{ data, next_cursor }`), read with the bounds of one answer: all
   * pages together at most maxAnswerBytes, at most MAX_PAGES pages, and a cursor never seen before.
   */
  async list<Item extends z.ZodType>(
    path: string,
    item: Item,
    query: RequestOptions['query'] = {},
  ): Promise<Array<z.output<Item>>> {
    return (await this.listPart(path, item, query)).items;
  }

  /**
   * At most `max` items of a paginated list, from `cursor` on (the list's start without one), read
   * page after page as `list` reads them; `nextCursor` continues after the last item when more exist.
   */
  async listPart<Item extends z.ZodType>(
    path: string,
    item: Item,
    query: RequestOptions['query'] = {},
    { max = Number.POSITIVE_INFINITY, cursor: from }: { max?: number; cursor?: string } = {},
  ): Promise<{
    items: Array<z.output<Item>>;
    nextCursor: string | undefined;
    /** The tenants a page left out (the audit log's omitted_tenants), each once, with its longest wait. */
    omittedTenants: OmittedTenant[];
  }> {
    const items: Array<z.output<Item>> = [];
    const omitted = new Map<string, OmittedTenant>();
    const pageShape = page(item);
    const seen = new Set<string>();
    let bytes = 0;
    let cursor = from;
    do {
      const answer = await this.get(path, pageShape, {
        limit: Math.min(MAX_PAGE_SIZE, max - items.length),
        ...query,
        cursor,
      });
      bytes += answer.bytes;
      if (bytes > this.maxAnswerBytes) {
        throw new CliError(
          EXIT.unavailable,
          `the pages of ${this.baseUrl}${path} are larger than ${sizeText(this.maxAnswerBytes)} together, the most the CLI reads of a list`,
        );
      }
      // Not push(...data): a page of a few hundred thousand items is more arguments than a call takes.
      for (const one of answer.body.data) items.push(one);
      for (const tenant of answer.body.omitted_tenants ?? []) {
        const known = omitted.get(tenant.tenant_id);
        if (!known || known.retry_after_seconds < tenant.retry_after_seconds)
          omitted.set(tenant.tenant_id, tenant);
      }
      cursor = answer.body.next_cursor ?? undefined;
      if (items.length >= max) break;
      if (cursor !== undefined && (seen.has(cursor) || seen.size + 1 >= MAX_PAGES)) {
        throw new CliError(
          EXIT.unavailable,
          `the list ${this.baseUrl}${path} does not end: ${seen.has(cursor) ? 'its next_cursor came back' : `more than ${MAX_PAGES} pages`}`,
        );
      }
      if (cursor !== undefined) seen.add(cursor);
    } while (cursor !== undefined);
    return { items, nextCursor: cursor, omittedTenants: [...omitted.values()] };
  }
}
