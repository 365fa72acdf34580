/**
 * The CLI's exit codes (README: "vantageedge CLI"). `diff` answers 0 or 1 like `diff --exit-code`, so
 * CI can gate on it; every failure has a code of its own so scripts can tell them apart.
 */
export const EXIT = {
  /** Done; for `diff`: the file and the tenant are equal. */
  ok: 0,
  /** `diff`: the file and the tenant differ. */
  different: 1,
  /** Bad usage or input: an unknown flag, an unreadable or invalid file, a 400/422 from the API. */
  usage: 2,
  /** Not signed in, or the token is refused (401) or may not do this (403). */
  auth: 3,
  /** The tenant (or a resource, or a position) does not exist (404). */
  notFound: 4,
  /** The config changed meanwhile (412) or the change conflicts with the current state (409). */
  conflict: 5,
  /**
   * `--wait-for-rollout` ran out: the change is recorded but not yet live on every replica (202), or the
   * rollout was not waited for (its answer was lost: 409 idempotency_answer_lost).
   */
  rolloutPending: 6,
  /**
   * The control plane failed (5xx), could not be reached, or kept refusing (429) through the CLI's
   * retries: try again later.
   */
  unavailable: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports in one line and exits with. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    /** Field-level details from the API's error shape. */
    readonly details: ReadonlyArray<{ field: string; issue: string }> = [],
  ) {
    super(message);
  }
}

/** The exit code of an admin API error status. */
export function exitCodeOfStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if (status >= 500 || status === 429) return EXIT.unavailable;
  return EXIT.usage;
}
