import express from 'express';
import { describe, expect, it } from 'vitest';
import {
  conflict,
  DOMAIN_ERROR_KINDS,
  DomainError,
  forbidden,
  invalid,
  notFound,
  preconditionFailed,
  rateLimited,
  unavailable,
} from '../domain/errors.js';
import { createErrorHandler, fromDomainError, toApiError } from './errors.js';

describe('domain errors → HTTP', () => {
  it('maps every kind to its status and code, with the fields as details', () => {
    const cases: Array<[DomainError, number, string, Array<{ field: string; issue: string }>]> = [
      [
        invalid('the origin belongs to another tenant', 'origin_id', 'must be an origin of the same tenant'),
        400,
        'validation_failed',
        [{ field: 'origin_id', issue: 'must be an origin of the same tenant' }],
      ],
      [invalid('bad'), 400, 'validation_failed', [{ field: 'body', issue: 'bad' }]],
      [forbidden('you have no access to this tenant'), 403, 'forbidden', []],
      [notFound('tenant', 'tenant_id'), 404, 'not_found', [{ field: 'tenant_id', issue: 'no such tenant' }]],
      [
        conflict('subdomain is already taken', 'subdomain', 'already taken'),
        409,
        'conflict',
        [{ field: 'subdomain', issue: 'already taken' }],
      ],
      [
        preconditionFailed('stale', 'stale revision'),
        412,
        'precondition_failed',
        [{ field: 'if-match', issue: 'stale revision' }],
      ],
      [unavailable('cache_purge_unavailable', 'no cache'), 503, 'cache_purge_unavailable', []],
      [
        rateLimited('admin_rate_limited', 'too many', 'tenant_commands_per_minute', 'at most 600', 3),
        429,
        'admin_rate_limited',
        [{ field: 'tenant_commands_per_minute', issue: 'at most 600' }],
      ],
    ];
    for (const [error, status, code, details] of cases) {
      expect(fromDomainError(error)).toMatchObject({ status, code, message: error.message, details });
    }
    expect(
      fromDomainError(rateLimited('admin_rate_limited', 'too many', 'user_requests_per_minute', 'x', 3))
        .headers,
    ).toEqual({ 'Retry-After': '3' });
    // Every kind has a mapping.
    for (const kind of DOMAIN_ERROR_KINDS) {
      expect(fromDomainError(new DomainError(kind, 'x')).status).toBeGreaterThanOrEqual(400);
    }
  });

  it('leaves unexpected errors to be a 500', () => {
    expect(toApiError(new Error('boom'))).toBeNull();
    expect(toApiError(new DomainError('not_found', 'route not found'))?.status).toBe(404);
  });

  it('answers with the one error shape through the error handler', async () => {
    const app = express();
    app.get('/x', () => {
      throw notFound('route');
    });
    app.use(createErrorHandler());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/x`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({
        error: { code: 'not_found', message: 'route not found', details: [] },
      });
    } finally {
      server.close();
    }
  });

  it("logs a dependency's failure behind a 503 and answers without it", async () => {
    const app = express();
    app.get('/x', () => {
      throw unavailable(
        'cache_purge_unavailable',
        'the cache could not be purged now',
        new Error('connect ECONNREFUSED 10.0.0.7:6379'),
      );
    });
    const logged: Array<[string, unknown]> = [];
    app.use(createErrorHandler(undefined, (code, cause) => logged.push([code, cause])));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/x`);
      expect(response.status).toBe(503);
      expect(await response.text()).not.toContain('10.0.0.7');
      expect(logged).toEqual([['cache_purge_unavailable', new Error('connect ECONNREFUSED 10.0.0.7:6379')]]);
    } finally {
      server.close();
    }
  });
});
