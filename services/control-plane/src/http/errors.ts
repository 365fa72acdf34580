import { ReadTimeoutError } from '@vantageedge/shared/event-store/port';
import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import type { ErrorRequestHandler } from 'express';
import { DomainError, type DomainErrorKind, type FieldIssue } from '../domain/errors.js';

/** One problem with one input field, e.g. `{ field: "subdomain", issue: "already taken" }`. */
export type ErrorDetail = FieldIssue;

/** The machine-readable error codes of the admin API, with the status each one maps to. */
export const ERROR_STATUS = {
  validation_failed: 400,
  malformed_request: 400,
  origin_address_blocked: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  duplicate_route: 409,
  idempotency_answer_lost: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  limit_exceeded: 422,
  unprocessable: 422,
  admin_rate_limited: 429,
  too_many_auth_failures: 429,
  headers_too_large: 431,
  not_caught_up: 503,
  unavailable: 503,
  store_unavailable: 503,
  read_timeout: 503,
  read_limit_exceeded: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** An expected failure of a request; the error handler turns it into the one error shape. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetail[];
  /** Extra response headers (e.g. Retry-After for `not_caught_up`). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    details?: ErrorDetail[],
    headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details ?? [];
    this.headers = headers ?? {};
  }
}

export const payloadTooLarge = (): ApiError =>
  new ApiError(413, 'payload_too_large', 'the request body is too large', [
    {
      field: 'body',
      issue:
        'is larger than the endpoint takes (CONTROL_PLANE_BODY_LIMIT_BYTES; a tenant document: CONTROL_PLANE_DOCUMENT_LIMIT_BYTES)',
    },
  ]);

/** `what` not found; with `field`, the request field (a path parameter's name) that named it. */
export const notFound = (what: string, field?: string): ApiError =>
  new ApiError(
    404,
    'not_found',
    `${what} not found`,
    field === undefined ? [] : [{ field, issue: `no such ${what}` }],
  );

export const forbidden = (message = 'you may not do this on this tenant'): ApiError =>
  new ApiError(403, 'forbidden', message);

export const validationFailed = (details: ErrorDetail[]): ApiError =>
  new ApiError(400, 'validation_failed', 'the request is not valid', details);

export const conflict = (message: string, details?: ErrorDetail[]): ApiError =>
  new ApiError(409, 'conflict', message, details);

/** Each kind of the command layer's errors (domain/errors.ts) → its status and default code. */
const DOMAIN_ERRORS: Record<DomainErrorKind, [status: number, code: ErrorCode]> = {
  invalid: [400, 'validation_failed'],
  forbidden: [403, 'forbidden'],
  not_found: [404, 'not_found'],
  conflict: [409, 'conflict'],
  precondition_failed: [412, 'precondition_failed'],
  unprocessable: [422, 'unprocessable'],
  unavailable: [503, 'unavailable'],
  rate_limited: [429, 'admin_rate_limited'],
};

/** The one place a domain error becomes an HTTP answer. */
export function fromDomainError(error: DomainError): ApiError {
  const [status, code] = DOMAIN_ERRORS[error.kind];
  const details =
    error.issues.length > 0 || error.kind !== 'invalid'
      ? [...error.issues]
      : [{ field: 'body', issue: error.message }];
  const headers =
    error.retryAfterSeconds === undefined ? undefined : { 'Retry-After': String(error.retryAfterSeconds) };
  return new ApiError(status, error.code ?? code, error.message, details, headers);
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

/**
 * The problems one answer lists. A body within the document limit can hold hundreds of thousands (a
 * 60 KiB document of 20,000 empty routes: 40,000), which cost the event loop to spell and serialize
 * and the client megabytes to read; past this many, the last detail counts the rest.
 */
export const MAX_ERROR_DETAILS = 100;

/** The problems as answered: past MAX_ERROR_DETAILS, the first ones and how many more there were. */
export function listedDetails(details: ErrorDetail[], unlisted = 0): ErrorDetail[] {
  if (unlisted === 0 && details.length <= MAX_ERROR_DETAILS) return details;
  const listed = details.slice(0, MAX_ERROR_DETAILS - 1);
  const more = unlisted + details.length - listed.length;
  listed.push({ field: 'body', issue: `and ${more} more problems, not listed` });
  return listed;
}

export function errorBody(code: string, message: string, details: ErrorDetail[] = []): ErrorBody {
  return { error: { code, message, details: listedDetails(details) } };
}

interface BodyParserError {
  status?: number;
  statusCode?: number;
  type?: string;
  /** zlib's error number, on a decompression error. */
  errno?: number;
  /** The body as text, on a parse error. */
  body?: unknown;
}

/** JSON, but a scalar (`null`, `5`, `"x"`): what the strict parser refuses without it being malformed. */
function isJsonScalar(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value !== 'object' || value === null;
  } catch {
    return false;
  }
}

/**
 * Errors of express's body parser and router (http-errors shape). Two come with a status and no type:
 * the router's URIError for a path parameter that is no percent-encoded UTF-8 (`/tenants/%C0`), and
 * the body parser's decompression error (a body that is not the gzip, deflate or br it says it is).
 */
function fromBodyParser(err: unknown): ApiError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as BodyParserError;
  const status = e.status ?? e.statusCode;
  if (typeof status !== 'number') return null;
  if (err instanceof URIError && status === 400) {
    return validationFailed([{ field: 'path', issue: 'has an escape that is not percent-encoded UTF-8' }]);
  }
  if (e.type === undefined && status === 400 && typeof e.errno === 'number') {
    return validationFailed([
      { field: 'content-encoding', issue: 'the body is not data of the content coding it names' },
    ]);
  }
  if (typeof e.type !== 'string') return null;
  switch (e.type) {
    case 'entity.too.large':
      return payloadTooLarge();
    case 'entity.parse.failed':
      return validationFailed([
        { field: 'body', issue: isJsonScalar(e.body) ? 'must be a JSON object' : 'is not valid JSON' },
      ]);
    case 'encoding.unsupported':
      return new ApiError(415, 'unsupported_media_type', 'unsupported body encoding', [
        { field: 'content-encoding', issue: 'is a content coding the API does not read' },
      ]);
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_media_type', 'unsupported body charset', [
        { field: 'content-type', issue: 'names a charset other than utf-8: JSON bodies are UTF-8' },
      ]);
    default:
      return status >= 400 && status < 500
        ? new ApiError(status, 'validation_failed', 'the request body could not be read')
        : null;
  }
}

/** How long a client should wait after `store_unavailable`: a restart or failover takes seconds. */
const STORE_RETRY_AFTER_SECONDS = 2;

/**
 * PostgreSQL could not be reached, even on a new connection (shared/src/postgres/lost-connections.ts).
 * When a command's events may have been stored without its answer, the message says so: a retry with
 * the same Idempotency-Key finds out, and never applies the command twice (idempotency.ts).
 */
function fromStoreUnavailable(error: StoreUnavailableError): ApiError {
  const message = error.outcomeUnknown
    ? 'the connection to the database was lost while the change was being stored: it may or may not have been applied; send the request again with the same Idempotency-Key to find out'
    : 'the database cannot be reached; retry shortly';
  return new ApiError(503, 'store_unavailable', message, [], {
    'Retry-After': String(STORE_RETRY_AFTER_SECONDS),
  });
}

const READ_TIMEOUT_RETRY_AFTER_SECONDS = 1;

/** An admin read cut off after CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS: 503 `read_timeout`. */
export const readTimedOut = (timeoutMs: number): ApiError =>
  new ApiError(
    503,
    'read_timeout',
    `the read ran past ${timeoutMs} ms (CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS): narrow it (filters, a shorter time range) or retry later`,
    [],
    { 'Retry-After': String(READ_TIMEOUT_RETRY_AFTER_SECONDS) },
  );

/** An expected failure as the API reports it; null for anything unexpected (a 500). */
export function toApiError(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof DomainError) return fromDomainError(err);
  if (err instanceof StoreUnavailableError) return fromStoreUnavailable(err);
  // Event-store reads of admin reads (a config at a position) run under the read statement timeout.
  if (err instanceof ReadTimeoutError) return readTimedOut(err.timeoutMs);
  return fromBodyParser(err);
}

/**
 * Turns anything thrown in a handler into `{"error":{"code","message","details"}}`.
 * Unexpected errors become 500 `internal` and are logged; the stack never reaches the client. A
 * dependency's failure behind a 503 (a driver's message naming hosts and ports) is logged, never
 * answered.
 */
export function createErrorHandler(
  logUnexpected: (err: unknown) => void = () => {},
  logUnavailable: (code: string, cause: unknown) => void = () => {},
  /** Each 429 admin_rate_limited answered, by the limit its detail names (the field). */
  onAdminRateLimited: (limit: string) => void = () => {},
): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const expected = toApiError(err);
    const apiError = expected ?? new ApiError(500, 'internal', 'internal error');
    if (expected === null) logUnexpected(err);
    else if (apiError.status === 503 && err instanceof Error && err.cause !== undefined)
      logUnavailable(apiError.code, err.cause);
    if (apiError.code === 'admin_rate_limited') onAdminRateLimited(apiError.details[0]?.field ?? 'unknown');
    for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
    res.status(apiError.status).json(errorBody(apiError.code, apiError.message, apiError.details));
  };
}
