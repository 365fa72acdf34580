import { z } from 'zod';

/**
 * POST /api/v1/tenants/:id/explain: the request to explain. The answer's schema is shared with the
 * CLI and the console (@vantageedge/shared/domain/request-explanation).
 */

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$/;
const METHOD = /^[A-Za-z]{1,20}$/;

export const explainBody = z.strictObject({
  method: z.string().regex(METHOD, 'must be an HTTP method such as GET or POST').meta({
    description:
      'the method as the client sends it: the gateways refuse one with lower-case letters, or one they do not know (400 invalid_method)',
  }),
  host: z
    .string()
    .min(1, 'must not be empty')
    .max(300, 'must be at most 300 characters')
    .meta({ description: 'the Host the request is sent to (port and trailing dot allowed)' }),
  scheme: z
    .enum(['http', 'https'], { error: 'must be http or https' })
    .optional()
    .meta({ description: 'the scheme the request is sent with (part of the cache key; default https)' }),
  path: z
    .string()
    .min(1, 'must not be empty')
    .max(8192, 'must be at most 8192 characters')
    .startsWith('/', 'must start with /')
    .meta({ description: 'the request target as sent (may carry ?query)' }),
  headers: z
    .record(
      z.string().regex(HEADER_NAME, 'must be a header name'),
      z.union([z.string().max(8192), z.array(z.string().max(8192)).max(20)]),
    )
    .refine((headers) => Object.keys(headers).length <= 100, 'at most 100 headers')
    .optional()
    .meta({
      description:
        'request headers (credentials are read, never returned); a list is the field sent on several lines, read as a gateway reads it (joined with ", ", or only the first line of a field such as Authorization or User-Agent)',
    }),
  query: z
    .string()
    .max(8192, 'must be at most 8192 characters')
    .optional()
    .meta({ description: 'the query string without ?, when not in path' }),
  at_position: z
    .union([z.string().regex(/^\d{1,19}$/), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)], {
      error: 'must be an event position (a non-negative integer)',
    })
    .transform((value) => BigInt(value))
    .optional()
    .meta({ description: 'explain with the config as it was after this event (default: now)' }),
  at_time: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date-time with an offset' })
    .optional()
    .meta({
      description:
        'when the request is (was) made: API-key and token expiry are judged at this moment (default: now)',
    }),
  client_ip: z
    .union([z.ipv4(), z.ipv6()])
    .optional()
    .meta({ description: 'the client address the gateways would see (limits keyed on the IP)' }),
});
