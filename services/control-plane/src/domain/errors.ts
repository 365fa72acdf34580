/**
 * The command layer's failures, in domain terms and free of HTTP: deciders and command handlers throw
 * `DomainError`; only `http/errors.ts` turns a kind into a status and the API's one error shape.
 *
 *   invalid             the input breaks a rule the request schema cannot express      → 400
 *   forbidden           the caller sees the tenant but may not do this on it            → 403
 *   not_found           the resource (or one it refers to) does not exist, or is of a   → 404
 *                       tenant the caller cannot see (the same answer)
 *   conflict            the current state does not allow it (taken, last owner, race)   → 409
 *   precondition_failed the client's expected revision (If-Match) is not the current one → 412
 *   unprocessable       well-formed, but the API will not do it now: a tenant limit (code
 *                       limit_exceeded), an unproven custom domain (domain_verification_failed) → 422
 *   unavailable         a dependency the command needs is missing or down               → 503
 *   rate_limited        the caller or its tenant sent too many requests or commands      → 429
 *                       (code admin_rate_limited, with Retry-After)
 */
export const DOMAIN_ERROR_KINDS = [
  'invalid',
  'forbidden',
  'not_found',
  'conflict',
  'precondition_failed',
  'unprocessable',
  'unavailable',
  'rate_limited',
] as const;
export type DomainErrorKind = (typeof DOMAIN_ERROR_KINDS)[number];

/** One problem with one input field, e.g. `{ field: "subdomain", issue: "already taken" }`. */
export interface FieldIssue {
  field: string;
  issue: string;
}

export interface DomainErrorOptions {
  /** What is wrong with `field` (default: the message). */
  issue?: string;
  /** A more specific machine-readable code than the kind, e.g. `cache_purge_unavailable`. */
  code?: string;
  /** Every offending field, when there are several (default: `field` with `issue`). */
  issues?: readonly FieldIssue[];
  /** When trying again may succeed (rate_limited): whole seconds, answered as Retry-After. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class DomainError extends Error {
  override readonly name = 'DomainError';
  /** A more specific code than `kind`, when the API promises one. */
  readonly code: string | undefined;
  /** The offending fields (empty when the error is about no particular field). */
  readonly issues: readonly FieldIssue[];
  /** Whole seconds after which the same request may succeed, when the error says so. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    /** The input field the error is about, if any. */
    readonly field?: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.issues = options.issues ?? (field === undefined ? [] : [{ field, issue: options.issue ?? message }]);
  }
}

export const invalid = (message: string, field?: string, issue?: string): DomainError =>
  new DomainError('invalid', message, field, issue === undefined ? {} : { issue });

export const forbidden = (message: string, field?: string, issue?: string): DomainError =>
  new DomainError('forbidden', message, field, issue === undefined ? {} : { issue });

/** `what` not found; with `field`, the request field that named it. */
export const notFound = (what: string, field?: string): DomainError =>
  new DomainError('not_found', `${what} not found`, field, { issue: `no such ${what}` });

export const conflict = (message: string, field?: string, issue?: string): DomainError =>
  new DomainError('conflict', message, field, issue === undefined ? {} : { issue });

export const preconditionFailed = (message: string, issue: string): DomainError =>
  new DomainError('precondition_failed', message, 'if-match', { issue });

export const unavailable = (code: string, message: string, cause?: unknown): DomainError =>
  new DomainError('unavailable', message, undefined, { code, cause });

/** Over a rate limit: `field` names the limit that was hit; the same request may succeed after `retryAfterSeconds`. */
export const rateLimited = (
  code: string,
  message: string,
  field: string,
  issue: string,
  retryAfterSeconds: number,
): DomainError => new DomainError('rate_limited', message, field, { code, issue, retryAfterSeconds });

/**
 * `error` with its fields named from `place` (`routes.3`): a command run for one entry of a config
 * document names its own body's fields, which in a document of many entries says none of them.
 */
export function underPlace(error: DomainError, place: string): DomainError {
  return new DomainError(
    error.kind,
    error.message,
    error.field === undefined ? undefined : `${place}.${error.field}`,
    {
      ...(error.code === undefined ? {} : { code: error.code }),
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
      issues: error.issues.map((issue) => ({ ...issue, field: `${place}.${issue.field}` })),
      cause: error.cause,
    },
  );
}
