import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import type { RequestHandler } from 'express';
import type pg from 'pg';
import { ApiError, validationFailed } from '../http/errors.js';
import { HEADER_FORMATS } from '../http/header-formats.js';

export const MIN_POSITION_HEADER = 'x-min-position';

export interface MinPositionOptions {
  /** How long a query waits for the projector to reach the requested position. */
  maxWaitMs: number;
  pollIntervalMs: number;
}

/**
 * Read-your-writes: a command answers with the position of its events; a client sending that as
 * `X-Min-Position` gets a read model that includes them. The query waits briefly for the projector's
 * checkpoint, then gives up with 503 `not_caught_up` and `Retry-After` rather than answer stale.
 */
export function requireMinPosition(pool: pg.Pool, options: MinPositionOptions): RequestHandler {
  return async (req, _res, next) => {
    const header = req.get(MIN_POSITION_HEADER);
    if (header === undefined) return next();
    if (!HEADER_FORMATS.minPosition.test(header)) {
      return next(
        validationFailed([
          { field: 'X-Min-Position', issue: 'must be an event position (a non-negative integer)' },
        ]),
      );
    }
    const wanted = BigInt(header);
    const deadline = Date.now() + options.maxWaitMs;
    try {
      while (true) {
        const checkpoint = await readReadModelsPosition(pool);
        if (checkpoint >= wanted) return next();
        if (Date.now() >= deadline) {
          return next(
            new ApiError(
              503,
              'not_caught_up',
              `the read models are at position ${checkpoint}, not yet at ${wanted}; retry shortly`,
              [{ field: 'X-Min-Position', issue: `read models are at position ${checkpoint}` }],
              { 'Retry-After': '1' },
            ),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
      }
    } catch (error) {
      next(error);
    }
  };
}
