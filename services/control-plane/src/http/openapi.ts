import { z } from 'zod';
import {
  addCustomDomainBody,
  createApiKeyBody,
  createOriginBody,
  createRouteBody,
  createTenantBody,
  createUserBody,
  revokeApiKeyBody,
  rotateApiKeyBody,
  updateOriginBody,
  updateRouteBody,
  updateTenantBody,
  updateUserBody,
  uploadCertificateBody,
} from '../schemas/requests.js';
import {
  apiKeyResource,
  certificateResource,
  customDomainResource,
  errorResource,
  issuedApiKeyResource,
  originResource,
  routeResource,
  tenantResource,
  userResource,
} from '../schemas/resources.js';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests
 * (z.toJSONSchema, JSON Schema 2020-12 = OpenAPI 3.1's dialect).
 */

type JsonSchema = Record<string, unknown>;
const input = (schema: z.ZodType): JsonSchema =>
  strip(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }));
const output = (schema: z.ZodType): JsonSchema =>
  strip(z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }));
function strip(schema: JsonSchema): JsonSchema {
  const { $schema: _, ...rest } = schema;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });
const ERRORS = {
  '400': errorResponse('validation_failed: the body or a parameter is invalid (details name the fields)'),
  '401': errorResponse('unauthenticated: no valid Clerk session token'),
  '403': errorResponse('forbidden: the caller may not do this on this tenant'),
  '404': errorResponse('not_found'),
  '409': errorResponse('conflict: a unique value is taken, or the state does not allow this'),
  '413': errorResponse('payload_too_large'),
  '415': errorResponse('unsupported_media_type: send application/json'),
};
const COMMAND_HEADERS = {
  'X-Event-Position': {
    description: 'global position of the last event this command appended',
    schema: { type: 'string' },
  },
  ETag: { description: 'the stream revision of the resource', schema: { type: 'string' } },
};
const ID_PARAM = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const IF_MATCH = {
  name: 'If-Match',
  in: 'header',
  required: false,
  description: 'the ETag last read; a different current revision → 412 precondition_failed',
  schema: { type: 'string' },
};
const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'a retry with the same key returns the first response and appends nothing; the same key with another request → 422 idempotency_key_reused; kept 24 h',
  schema: { type: 'string', maxLength: 255 },
};
const MIN_POSITION = {
  name: 'X-Min-Position',
  in: 'header',
  required: false,
  description: 'answer only once the read models include this event position (else 503 not_caught_up)',
  schema: { type: 'string' },
};

interface Resource {
  collection: string;
  schema: string;
  create: string;
  update?: string;
  tag: string;
}

const RESOURCES: Resource[] = [
  { collection: 'tenants', schema: 'Tenant', create: 'CreateTenant', update: 'UpdateTenant', tag: 'Tenants' },
  { collection: 'users', schema: 'User', create: 'CreateUser', update: 'UpdateUser', tag: 'Users' },
  { collection: 'origins', schema: 'Origin', create: 'CreateOrigin', update: 'UpdateOrigin', tag: 'Origins' },
  { collection: 'routes', schema: 'Route', create: 'CreateRoute', update: 'UpdateRoute', tag: 'Routes' },
  { collection: 'api-keys', schema: 'ApiKey', create: 'CreateApiKey', tag: 'API keys' },
  { collection: 'certificates', schema: 'Certificate', create: 'UploadCertificate', tag: 'Certificates' },
];

function resourcePaths(r: Resource): Record<string, unknown> {
  const created = r.schema === 'ApiKey' ? ref('IssuedApiKey') : ref(r.schema);
  const collection = {
    get: {
      tags: [r.tag],
      summary: `List ${r.collection}`,
      parameters: [
        ...(r.collection === 'tenants'
          ? []
          : [{ name: 'tenant_id', in: 'query', schema: { type: 'string', format: 'uuid' } }]),
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } },
        { name: 'cursor', in: 'query', schema: { type: 'string' } },
        MIN_POSITION,
      ],
      responses: {
        '200': {
          description: 'a page',
          content: json({
            type: 'object',
            properties: {
              data: { type: 'array', items: ref(r.schema) },
              next_cursor: { type: ['string', 'null'] },
            },
          }),
        },
        '401': ERRORS['401'],
        '503': errorResponse('not_caught_up'),
      },
    },
    post: {
      tags: [r.tag],
      summary: `Create a ${r.schema}`,
      parameters: [IDEMPOTENCY_KEY],
      requestBody: { required: true, content: json(ref(r.create)) },
      responses: {
        '201': { description: 'created', headers: COMMAND_HEADERS, content: json(created) },
        ...ERRORS,
        '422': errorResponse(
          'idempotency_key_reused; or limit_exceeded: a tenant limit (TENANT_MAX_*) would be exceeded (details name the field)',
        ),
        ...(r.schema === 'Certificate'
          ? { '503': errorResponse('certificates_unavailable: CERTIFICATE_ENCRYPTION_KEY is not set') }
          : {}),
      },
    },
  };
  const item: Record<string, unknown> = {
    get: {
      tags: [r.tag],
      summary: `Get a ${r.schema}`,
      parameters: [ID_PARAM, MIN_POSITION],
      responses: {
        '200': {
          description: 'the resource',
          headers: { ETag: COMMAND_HEADERS.ETag },
          content: json(ref(r.schema)),
        },
        '401': ERRORS['401'],
        '403': ERRORS['403'],
        '404': ERRORS['404'],
      },
    },
    delete: {
      tags: [r.tag],
      summary: r.schema === 'ApiKey' ? 'Revoke an API key' : `Delete a ${r.schema}`,
      parameters: [ID_PARAM, IF_MATCH],
      responses: {
        '204': { description: 'deleted', headers: COMMAND_HEADERS },
        ...ERRORS,
        '412': errorResponse('precondition_failed'),
      },
    },
  };
  if (r.update) {
    item['patch'] = {
      tags: [r.tag],
      summary: `Update a ${r.schema} (top-level fields replace whole values)`,
      parameters: [ID_PARAM, IF_MATCH],
      requestBody: { required: true, content: json(ref(r.update)) },
      responses: {
        '200': { description: 'updated', headers: COMMAND_HEADERS, content: json(ref(r.schema)) },
        ...ERRORS,
        '412': errorResponse('precondition_failed'),
      },
    };
  }
  return { [`/api/v1/${r.collection}`]: collection, [`/api/v1/${r.collection}/{id}`]: item };
}

const DOMAIN_PARAM = {
  name: 'domain',
  in: 'path',
  required: true,
  description: 'the host name (any case or Unicode; matched in its canonical form)',
  schema: { type: 'string' },
};

/** Custom domains: claim (pending), prove ownership with a DNS TXT record (verified), remove. */
function customDomainPaths(): Record<string, unknown> {
  const tags = ['Custom domains'];
  return {
    '/api/v1/tenants/{id}/domains': {
      get: {
        tags,
        summary: "List the tenant's custom domains (pending and verified)",
        parameters: [ID_PARAM, MIN_POSITION],
        responses: {
          '200': {
            description: 'every domain of the tenant (at most 50)',
            content: json({
              type: 'object',
              properties: {
                data: { type: 'array', items: ref('CustomDomain') },
                next_cursor: { type: 'null' },
              },
            }),
          },
          '401': ERRORS['401'],
          '404': ERRORS['404'],
        },
      },
      post: {
        tags,
        summary:
          'Claim a host name for the tenant: reserved platform-wide at once, pending (serving nothing) until verified. Platform admins may pass verified: true to assign it.',
        parameters: [ID_PARAM, IDEMPOTENCY_KEY],
        requestBody: { required: true, content: json(ref('AddCustomDomain')) },
        responses: {
          '201': {
            description: 'claimed; create the TXT record named in verification, then call …/verify',
            headers: { ...COMMAND_HEADERS, Location: { schema: { type: 'string' } } },
            content: json(ref('CustomDomain')),
          },
          ...ERRORS,
          '400': errorResponse(
            'validation_failed: not a host name (port, wildcard, trailing dot, bad label, too long) or a platform host (under PLATFORM_BASE_DOMAINS)',
          ),
          '403': errorResponse(
            'forbidden: no write access to the tenant, or verified: true from a non-platform admin',
          ),
          '409': errorResponse(
            'conflict: the name is already claimed (by another tenant, or already this one’s)',
          ),
          '422': errorResponse('idempotency_key_reused'),
        },
      },
    },
    '/api/v1/tenants/{id}/domains/{domain}': {
      get: {
        tags,
        summary: 'Get one custom domain',
        parameters: [ID_PARAM, DOMAIN_PARAM, MIN_POSITION],
        responses: {
          '200': { description: 'the domain', content: json(ref('CustomDomain')) },
          '401': ERRORS['401'],
          '404': ERRORS['404'],
        },
      },
      delete: {
        tags,
        summary: 'Remove a custom domain: it stops serving on every replica and the name is free again',
        parameters: [ID_PARAM, DOMAIN_PARAM, IF_MATCH],
        responses: {
          '204': { description: 'removed', headers: COMMAND_HEADERS },
          ...ERRORS,
          '412': errorResponse('precondition_failed'),
        },
      },
    },
    '/api/v1/tenants/{id}/domains/{domain}/verify': {
      post: {
        tags,
        summary:
          'Look up the TXT record _vantageedge-challenge.<domain> (DNS_RESOLVER) and verify the domain when it holds the value issued for this tenant and domain; only then it serves',
        parameters: [ID_PARAM, DOMAIN_PARAM, IDEMPOTENCY_KEY],
        responses: {
          '200': {
            description: 'verified (or already verified: nothing changes)',
            headers: COMMAND_HEADERS,
            content: json(ref('CustomDomain')),
          },
          ...ERRORS,
          '422': errorResponse(
            'domain_verification_failed: no TXT record, a record with another value, or the lookup failed (the message says which); nothing changes',
          ),
        },
      },
    },
  };
}

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const resource of RESOURCES) Object.assign(paths, resourcePaths(resource));
  for (const [action, schema, status, summary] of [
    ['rotate', 'RotateApiKey', '201', 'Rotate an API key: a new key; the old one works for the grace period'],
    ['revoke', 'RevokeApiKey', '200', 'Revoke an API key'],
  ] as const) {
    paths[`/api/v1/api-keys/{id}/${action}`] = {
      post: {
        tags: ['API keys'],
        summary,
        parameters: [ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY],
        requestBody: { required: false, content: json(ref(schema)) },
        responses: {
          [status]: {
            description: summary,
            headers: COMMAND_HEADERS,
            content: json(ref(action === 'rotate' ? 'IssuedApiKey' : 'ApiKey')),
          },
          ...ERRORS,
          '412': errorResponse('precondition_failed'),
        },
      },
    };
  }
  paths['/api/v1/certificates/{id}/reseal'] = {
    post: {
      tags: ['Certificates'],
      summary:
        "Seal the certificate's private key again under the current CERTIFICATE_ENCRYPTION_KEY (after a rotation of that key)",
      parameters: [ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY],
      responses: {
        '200': {
          description: 'resealed (or already sealed under the current key)',
          headers: COMMAND_HEADERS,
          content: json(ref('Certificate')),
        },
        ...ERRORS,
        '412': errorResponse('precondition_failed'),
        '503': errorResponse('certificates_unavailable'),
      },
    },
  };
  Object.assign(paths, customDomainPaths());
  paths['/api/v1/audit-log'] = {
    get: {
      tags: ['Audit log'],
      summary: 'Events affecting the tenants the caller can see, newest first',
      parameters: [
        { name: 'tenant_id', in: 'query', schema: { type: 'string', format: 'uuid' } },
        { name: 'limit', in: 'query', schema: { type: 'integer' } },
        { name: 'cursor', in: 'query', schema: { type: 'string' } },
      ],
      responses: { '200': { description: 'a page of audit entries' }, '401': ERRORS['401'] },
    },
  };
  for (const [path, summary] of [
    ['/healthz', 'Liveness: the process runs'],
    ['/readyz', 'Readiness: PostgreSQL and the event store answer'],
    ['/metrics', 'Prometheus metrics'],
  ] as const) {
    paths[path] = {
      get: { tags: ['Operations'], summary, security: [], responses: { '200': { description: 'ok' } } },
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'VantageEdge control plane',
      version: '1.0.0',
      description:
        'Admin API of the VantageEdge multi-tenant API gateway. Commands append events; queries read projections. Errors: {"error":{"code","message","details":[{"field","issue"}]}}.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ clerkSession: [] }],
    paths,
    components: {
      securitySchemes: {
        clerkSession: { type: 'http', scheme: 'bearer', bearerFormat: 'Clerk session JWT' },
      },
      schemas: {
        CreateTenant: input(createTenantBody),
        UpdateTenant: input(updateTenantBody),
        CreateUser: input(createUserBody),
        UpdateUser: input(updateUserBody),
        CreateOrigin: input(createOriginBody),
        UpdateOrigin: input(updateOriginBody),
        CreateRoute: input(createRouteBody),
        UpdateRoute: input(updateRouteBody),
        CreateApiKey: input(createApiKeyBody),
        AddCustomDomain: input(addCustomDomainBody),
        RotateApiKey: input(rotateApiKeyBody),
        RevokeApiKey: input(revokeApiKeyBody),
        UploadCertificate: input(uploadCertificateBody),
        Tenant: output(tenantResource),
        User: output(userResource),
        Origin: output(originResource),
        Route: output(routeResource),
        ApiKey: output(apiKeyResource),
        IssuedApiKey: output(issuedApiKeyResource),
        Certificate: output(certificateResource),
        CustomDomain: output(customDomainResource),
        Error: output(errorResource),
      },
    },
  };
}
