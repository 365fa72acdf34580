import { USAGE_DATE_RANGE, USER_ID_PATTERN } from '../queries/usage.js';

/** GET /api/v1/usage in /openapi.json (its response schema is the component UsageReport). */
export function usagePaths(errors: Record<string, unknown>): Record<string, unknown> {
  const uuid = { type: 'string', format: 'uuid' };
  const datetime = { type: 'string', format: 'date-time' };
  const range = `from ${USAGE_DATE_RANGE.earliest} to ${USAGE_DATE_RANGE.latest} (else 400)`;
  return {
    '/api/v1/usage': {
      get: {
        operationId: 'getUsage',
        tags: ['Usage'],
        summary:
          'Requests the gateways served, per hour or day, by status class (a tenant, an API key, a route or a user)',
        description:
          'Counted by every gateway replica and added up per UTC hour; the numbers trail the traffic by a few seconds (the gateways’ flush interval plus the usage flusher’s). Give tenant_id or api_key_id. Totals are exact; the breakdowns have a limit per tenant, replica and hour (GATEWAY_USAGE_MAX_USERS_PER_TENANT users, a share of GATEWAY_USAGE_MAX_CELLS cells): requests past it are counted under id `*` (`overflow: true`) — as user, or as route, key and user at once. Hours older than USAGE_RETENTION_DAYS (400) are deleted.',
        parameters: [
          { name: 'tenant_id', in: 'query', schema: uuid },
          { name: 'api_key_id', in: 'query', schema: uuid, description: 'one key (its tenant is implied)' },
          { name: 'route_id', in: 'query', schema: uuid },
          {
            name: 'user_id',
            in: 'query',
            schema: { type: 'string', minLength: 1, maxLength: 200, pattern: USER_ID_PATTERN },
            description:
              'a user as `by_user` shows it (a Clerk user id, `oidc:<issuer digest>:<sub>`, `svc:<service id>`); `*`: the users counted together past the gateways’ limit',
          },
          {
            name: 'granularity',
            in: 'query',
            schema: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
          },
          {
            name: 'from',
            in: 'query',
            schema: datetime,
            description: `default: 24 periods before \`to\`; ${range}`,
          },
          {
            name: 'to',
            in: 'query',
            schema: datetime,
            description: `default: now; after \`from\` (as given, before rounding; else 400); ${range}`,
          },
        ],
        responses: {
          '200': {
            description: 'the usage',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/UsageReport' } } },
          },
          ...errors,
        },
      },
    },
  };
}
