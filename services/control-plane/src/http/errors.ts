import type { ErrorRequestHandler } from 'express';

/** One problem with one input field, e.g. `{ field: "subdomain", issue: "already taken" }`. */
export interface ErrorDetail {
  field: string;
  issue: string;
}

/** The machine-readable error codes of the admin API, with the status each one maps to. */
export const ERROR_STATUS = {
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  limit_exceeded: 422,
  not_caught_up: 503,
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

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);

export const forbidden = (message = 'you may not do this on this tenant'): ApiError =>
  new ApiError(403, 'forbidden', message);

export const validationFailed = (details: ErrorDetail[]): ApiError =>
  new ApiError(400, 'validation_failed', 'the request is not valid', details);

export const conflict = (message: string, details?: ErrorDetail[]): ApiError =>
  new ApiError(409, 'conflict', message, details);

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

export function errorBody(code: string, message: string, details: ErrorDetail[] = []): ErrorBody {
  return { error: { code, message, details } };
}

/** Errors thrown by express's body parser (http-errors shape). */
interface BodyParserError {
  status?: number;
  statusCode?: number;
  type?: string;
}

function fromBodyParser(err: unknown): ApiError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as BodyParserError;
  const status = e.status ?? e.statusCode;
  if (typeof status !== 'number' || typeof e.type !== 'string') return null;
  switch (e.type) {
    case 'entity.too.large':
      return new ApiError(413, 'payload_too_large', 'the request body is too large');
    case 'entity.parse.failed':
      return validationFailed([{ field: 'body', issue: 'is not valid JSON' }]);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_media_type', 'unsupported body encoding or charset');
    default:
      return status >= 400 && status < 500
        ? new ApiError(status, 'validation_failed', 'the request body could not be read')
        : null;
  }
}

/**
 * Turns anything thrown in a handler into `{"error":{"code","message","details"}}`.
 * Unexpected errors become 500 `internal` and are logged; the stack never reaches the client.
 */
export function createErrorHandler(logUnexpected: (err: unknown) => void = () => {}): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const apiError =
      err instanceof ApiError
        ? err
        : (fromBodyParser(err) ?? new ApiError(500, 'internal', 'internal error'));
    if (apiError.status >= 500 && !(err instanceof ApiError)) logUnexpected(err);
    for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
    res.status(apiError.status).json(errorBody(apiError.code, apiError.message, apiError.details));
  };
}
