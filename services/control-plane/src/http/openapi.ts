import { RESOURCE_TYPES } from '@vantageedge/projections/read-models/schema';
import { MIN_HEALTH_CHECK_INTERVAL_SECONDS } from '@vantageedge/shared/domain/gateway-config';
import { requestExplanation } from '@vantageedge/shared/domain/request-explanation';
import { MAX_FILTER_TAGS } from '@vantageedge/shared/domain/resource-tags';
import { z } from 'zod';
import { CONFIG_CHANGE_WAIT_MS } from '../config-history/config-change-lock.js';
import { configDocument, rollbackBody } from '../schemas/config-document.js';
import {
  configChangeResult,
  configDiff,
  configDocumentAnswer,
  configHistoryEntry,
  tenantConfigResource,
} from '../schemas/config-views.js';
import { explainBody } from '../schemas/explain.js';
import {
  createApiKeyBody,
  createCustomDomainBody,
  createOriginBody,
  createRouteBody,
  createTenantBody,
  createUserBody,
  revokeApiKeyBody,
  rotateApiKeyBody,
  updateApiKeyBody,
  updateOriginBody,
  updateRouteBody,
  updateTenantBody,
  updateUserBody,
  uploadCertificateBody,
} from '../schemas/requests.js';
import {
  apiKeyResource,
  apiKeyWithQuotaResource,
  certificateResource,
  customDomainResource,
  errorResource,
  issuedApiKeyResource,
  listItem,
  originResource,
  routeResource,
  tenantResource,
  usageReportResource,
  userResource,
} from '../schemas/resources.js';
import { consolePaths } from './console-openapi.js';
import { HEADER_PATTERNS } from './header-formats.js';
import { ROUTE_POLICY_EXAMPLES } from './route-policy-examples.js';
import { SAFE_TEXT_PATTERN } from './safe-text.js';
import { usagePaths } from './usage-openapi.js';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests
 * (z.toJSONSchema, JSON Schema 2020-12 = OpenAPI 3.1's dialect), plus what zod cannot say: the text
 * PostgreSQL can store (every request string), the request headers' formats, cross-field rules of
 * origins, and every status each operation answers. A test compares it with the routes the app
 * registers (openapi.int.test.ts) and `make test-fuzz` checks the running service against it.
 */

type JsonSchema = Record<string, unknown>;

/** Every request string must be safe text; free-form values are JsonValue (safe strings and keys). */
function safeStrings(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(safeStrings);
  if (typeof schema !== 'object' || schema === null) return schema;
  const node: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    node[key] =
      key === 'properties' || key === '$defs'
        ? Object.fromEntries(
            Object.entries(value as JsonSchema).map(([name, sub]) => [name, safeStrings(sub)]),
          )
        : safeStrings(value);
  }
  if (node['additionalProperties'] !== undefined && isAny(node['additionalProperties'])) {
    node['additionalProperties'] = ref('JsonValue');
  }
  if (node['propertyNames'] !== undefined)
    node['propertyNames'] = { type: 'string', pattern: SAFE_TEXT_PATTERN };
  // Strings with a pattern of their own already name the characters they take.
  if (node['type'] === 'string' && node['format'] === undefined && node['enum'] === undefined) {
    node['pattern'] ??= SAFE_TEXT_PATTERN;
  }
  // Route methods: each once.
  if (node['type'] === 'array' && (node['items'] as JsonSchema | undefined)?.['enum'] !== undefined) {
    node['uniqueItems'] = true;
  }
  return node;
}
const isAny = (schema: unknown) =>
  typeof schema === 'object' && schema !== null && Object.keys(schema).length === 0;

const input = (schema: z.ZodType): JsonSchema =>
  safeStrings(strip(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }))) as JsonSchema;
const output = (schema: z.ZodType): JsonSchema =>
  strip(z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }));
function strip(schema: JsonSchema): JsonSchema {
  const { $schema: _, ...rest } = schema;
  return rest;
}

/** load_balancing: consistent hashing on a header or cookie names it (hash_key). */
const HASH_KEY_RULE = {
  if: {
    properties: { algorithm: { const: 'consistent_hash' }, hash_on: { enum: ['header', 'cookie'] } },
    required: ['algorithm', 'hash_on'],
  },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword
  then: { required: ['hash_key'] },
};
function withOriginRules(schema: JsonSchema, create: boolean): JsonSchema {
  const properties = schema['properties'] as Record<string, JsonSchema>;
  const lb = properties['load_balancing'];
  if (lb) properties['load_balancing'] = { ...lb, ...HASH_KEY_RULE };
  // Every replica probes every target at the interval: a tenant may not ask for less than this.
  const interval = (properties['health_check'] as { properties?: Record<string, JsonSchema> } | undefined)
    ?.properties?.['active']?.['properties'] as Record<string, JsonSchema> | undefined;
  if (interval?.['interval_seconds']) {
    interval['interval_seconds'] = {
      ...interval['interval_seconds'],
      minimum: MIN_HEALTH_CHECK_INTERVAL_SECONDS,
    };
  }
  // url (one target) or targets: exactly one on create, at most one on update.
  return create
    ? { ...schema, oneOf: [{ required: ['url'] }, { required: ['targets'] }] }
    : { ...schema, not: { required: ['url', 'targets'] } };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponse = (description: string, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: json(ref('Error')),
});

const header = (description: string, schema: JsonSchema) => ({ description, schema });
const RESPONSE_HEADERS = {
  'X-Event-Position': header('global position of the last event of this command (read your writes)', {
    type: 'string',
    pattern: '^[0-9]+$',
  }),
  ETag: header('the revision of the resource, for If-Match', { type: 'string', pattern: '^"[0-9]+"$' }),
  /** A GET's: a route read without write access shows no match values, and is tagged as another representation. */
  ReadETag: header(
    'the revision of the resource, for If-Match and If-None-Match; a route read without write access (match and split override values <redacted>) is "n-redacted"',
    { type: 'string', pattern: '^"[0-9]+(?:-redacted)?"$' },
  ),
  Location: header('the created resource', { type: 'string' }),
  'X-Rollout': header(
    'with wait_for_rollout: complete; pending (202, the wait ran out); unknown (202, the rollout status could not be read — the change is stored)',
    { type: 'string', enum: ['complete', 'pending', 'unknown'] },
  ),
  'Idempotent-Replayed': header('the stored answer of an earlier request with this Idempotency-Key', {
    type: 'string',
    enum: ['true'],
  }),
  'Retry-After': header('seconds to wait before retrying', { type: 'string', pattern: '^[0-9]+$' }),
  CommandCacheControl: header(
    'no-store: a command answer (an issued or rotated API key plaintext among them) is kept by no cache',
    { type: 'string', enum: ['no-store'] },
  ),
};

const E = {
  badRequest: errorResponse(
    'validation_failed: the body, a parameter or a header (If-Match, Idempotency-Key, X-Min-Position, wait_for_rollout) is malformed; origin_address_blocked: an origin target or OIDC jwks_url names a blocked address (ORIGIN_BLOCKED_CIDRS, the platform’s own listeners); oidc_provider_is_platform: settings.oidc.issuer or jwks_url names the platform’s own Clerk instance (its host, any spelling). Details name the fields',
  ),
  unauthenticated: errorResponse('unauthenticated: no valid Clerk session token', {
    'WWW-Authenticate': header('Bearer', { type: 'string' }),
  }),
  forbidden: errorResponse(
    'forbidden: the caller sees the tenant but its role does not allow this (a viewer writing, an admin changing an owner, what only platform admins do)',
  ),
  notFound: errorResponse(
    'not_found: the resource, or one the request names, does not exist, is of a deleted tenant, or is of a tenant the caller cannot see: the same answer either way, so ids of other tenants are never confirmed',
  ),
  conflict: errorResponse(
    "conflict: a unique value is taken, the state does not allow it (e.g. the last owner, a host another tenant's gateways still serve), a concurrent change, a command on a tenant's resource that waited 30 s for a config apply or rollback of the tenant (Retry-After), or a request with this Idempotency-Key is still running (Retry-After: until its lock ends); duplicate_route: the route (or a config document's entry) has another route's whole match, named in the message; idempotency_answer_lost: the first request with this Idempotency-Key was applied but its answer was lost (X-Event-Position: its events)",
    { 'Retry-After': RESPONSE_HEADERS['Retry-After'] },
  ),
  stale: errorResponse('precondition_failed: If-Match is not the current revision'),
  tooLarge: errorResponse('payload_too_large: the body is larger than CONTROL_PLANE_BODY_LIMIT_BYTES'),
  mediaType: errorResponse('unsupported_media_type: send application/json, in UTF-8'),
  unprocessable: errorResponse(
    "idempotency_key_reused: this Idempotency-Key was used with another request; limit_exceeded: a tenant limit (TENANT_MAX_*) would be exceeded, or the tenant's gateway snapshot would be over its budget (TENANT_MAX_SNAPSHOT_PERCENT of what the snapshot bus takes, at most TENANT_MAX_SNAPSHOT_JSON_BYTES of JSON); domain_verification_failed: the TXT record does not (yet) prove the domain. Details name the field",
  ),
  notCaughtUp: errorResponse(
    'not_caught_up: the read models have not reached X-Min-Position yet; read_timeout: the read ran past CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS (narrow it); read_limit_exceeded (a config at a position: …/config, …/document, …/diff, the target of a rollback): folding it needs more events of the event log than CONTROL_PLANE_CONFIG_READ_MAX_EVENTS (details[0].field config_read_max_events): what was read is kept, so the same request sent after Retry-After goes on from there',
    {
      'Retry-After': RESPONSE_HEADERS['Retry-After'],
    },
  ),
  rateLimited: errorResponse(
    'admin_rate_limited: the caller sent more /api/v1 requests than CONTROL_PLANE_USER_REQUESTS_PER_MINUTE allows (details[0].field user_requests_per_minute), or — a command — its tenant more commands than CONTROL_PLANE_TENANT_COMMANDS_PER_MINUTE (tenant_commands_per_minute), or more of its requests at once than CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT allows (user_requests_in_flight), or the tenant the request was granted access to has as many requests running at once, whoever sent them, as CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT allows (tenant_requests_in_flight), or the callers acting as the caller’s Clerk organisation (its token’s active org) have as many requests running at once, on whichever tenants, as CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT allows (org_requests_in_flight), or the admins of every tenant together, platform admins aside, have as many running as CONTROL_PLANE_REQUESTS_IN_FLIGHT allows (requests_in_flight), or — GET /api/v1/usage — the tenant has as many usage reads running as it may at once (usage_queries_in_flight), or — a whole-config read (…/config, …/config/document, …/config/diff, explain, plan, apply, a rollback or its dry run; the document of a plan or apply counts 20 times its bytes, for its validation, and each step a plan or dry run rehearses 64 KiB; an explain that builds its config version’s route matcher (the first, or one after explain let the version go: it keeps 4 MiB of configs) its routes 8 times more; an answer replayed under its Idempotency-Key, its size; a page of GET /api/v1/audit-log, the JSON of its entries of each tenant it lists) — the reads of the tenant went through more config, and events of its history folded, than CONTROL_PLANE_TENANT_CONFIG_READ_BYTES_PER_MINUTE allows (tenant_config_read_bytes_per_minute), or — plan and apply — the documents being read and worked on hold CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT already (document_bytes_in_flight), or half of it for this tenant (tenant_document_bytes_in_flight). too_many_auth_failures: this client address presented more rejected tokens than CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE allows (details[0].field authorization): every /api/v1 request from it is refused, unverified, until its minute ends. Nothing was done; retry after Retry-After seconds',
    { 'Retry-After': RESPONSE_HEADERS['Retry-After'] },
  ),
};

const STORE_UNAVAILABLE =
  'store_unavailable: PostgreSQL cannot be reached, even on a new connection, or no pooled connection came free within CONTROL_PLANE_POOL_WAIT_MS, or a connection stopped answering (a statement unanswered for POSTGRES_STATEMENT_DEADLINE_MS) (Retry-After); for a command whose change may or may not have been stored the message says so: send it again with the same Idempotency-Key';

const COMMAND_FOLD_UNAVAILABLE =
  "read_limit_exceeded, read_timeout (a command that folds its tenant's config from the event log: a create a tenant limit counts, a change the snapshot budget measures, plan, apply, rollback): the fold needed more events than CONTROL_PLANE_CONFIG_READ_MAX_EVENTS (details[0].field config_read_max_events) or a read ran past CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS; nothing was appended and what was folded is kept, so the same request sent again after Retry-After goes on from there";

/**
 * What every /api/v1 request can answer: 429 (its caller's rate limit, commands their tenant's too)
 * and 503 store_unavailable, added to an operation's own 503 where it has one.
 */
function withCommonAnswers(paths: Record<string, unknown>): void {
  for (const [path, item] of Object.entries(paths)) {
    if (!path.startsWith('/api/v1/')) continue;
    for (const [method, operation] of Object.entries(
      item as Record<string, { responses?: Record<string, unknown> }>,
    )) {
      if (!operation?.responses) continue;
      const own = operation.responses['503'] as { description: string } | undefined;
      const common =
        method === 'get' ? STORE_UNAVAILABLE : `${STORE_UNAVAILABLE}; ${COMMAND_FOLD_UNAVAILABLE}`;
      const unavailable = own
        ? { ...own, description: `${own.description}; ${common}` }
        : errorResponse(common, { 'Retry-After': RESPONSE_HEADERS['Retry-After'] });
      operation.responses = { ...operation.responses, '429': E.rateLimited, '503': unavailable };
    }
  }
}

const ID_PARAM = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const IF_MATCH = {
  name: 'If-Match',
  in: 'header',
  required: false,
  description:
    'the ETag last read ("3" or 3), a list of ETags ("3", "4"), or * (any current revision); compared strongly (RFC 9110 §13.1.1): a weak ETag (W/"3") never matches. A well-formed list naming no current revision → 412 precondition_failed, a malformed one → 400; a resource that does not exist → 404 whatever If-Match says',
  schema: { type: 'string', pattern: HEADER_PATTERNS.ifMatch },
};
const IF_NONE_MATCH = {
  name: 'If-None-Match',
  in: 'header',
  required: false,
  description:
    'ETags the client holds ("3", W/"3", a list of them, or *): one of them the current revision → 304 without a body (weak comparison, RFC 9110)',
  schema: { type: 'string' },
};
const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    '1–255 visible ASCII characters. A retry with the same key (same caller) returns the first answer (Idempotent-Replayed: true) and appends nothing, after re-checking the caller may still run it; the same key with another request → 422; while the first still runs → 409. Kept 24 h.',
  schema: { type: 'string', pattern: HEADER_PATTERNS.idempotencyKey },
};
const MIN_POSITION = {
  name: 'X-Min-Position',
  in: 'header',
  required: false,
  description:
    "a command's X-Event-Position: answer only once the read models include it (waits up to 2 s, else 503 not_caught_up); beyond the newest event or malformed → 400. Only a caller with access to what the endpoint serves waits: any other gets the answer without the header (404, 403, an empty list) at once",
  schema: { type: 'string', pattern: HEADER_PATTERNS.minPosition },
};
const WAIT_FOR_ROLLOUT = {
  name: 'wait_for_rollout',
  in: 'query',
  required: false,
  description:
    'hold the answer until every live gateway replica serves the change (X-Rollout: complete), at most this long (5s, 500ms, 1.5; ≤ 60 s); 202 with the rollout status when it takes longer; 400 without Redis',
  schema: { type: 'string', pattern: HEADER_PATTERNS.waitForRollout },
};
const LIMIT = {
  name: 'limit',
  in: 'query',
  schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
};
const CURSOR = {
  name: 'cursor',
  in: 'query',
  description: 'next_cursor of the previous page',
  schema: { type: 'string', pattern: HEADER_PATTERNS.cursor },
};
const TENANT_FILTER = { name: 'tenant_id', in: 'query', schema: { type: 'string', format: 'uuid' } };
const TAGS_FILTER = {
  name: 'tags',
  in: 'query',
  description: `those carrying every tag of a,b, or any tag of a/b (at most ${MAX_FILTER_TAGS} tags; one operator)`,
  schema: { type: 'string' },
};
const SELECT_TAGS = {
  name: 'select_tags',
  in: 'query',
  description:
    'a,b: only the origins and routes carrying every one of these tags, as a document of select_tags (one team’s share of the tenant)',
  schema: { type: 'string' },
};
const TAGGED_COLLECTIONS: ReadonlySet<string> = new Set(['origins', 'routes', 'api-keys']);

const page = (items: unknown) => ({
  type: 'object',
  required: ['data', 'next_cursor'],
  properties: { data: { type: 'array', items }, next_cursor: { type: ['string', 'null'] } },
});

/** Applies and rollbacks of one tenant run one at a time; one waiting too long answers 409. */
const CONFIG_CHANGE_CONFLICT = errorResponse(
  `${E.conflict.description}; or another config apply or rollback of this tenant was still running after ${CONFIG_CHANGE_WAIT_MS / 1000} s (Retry-After; each runs alone for its tenant, planned from what the one before it left); or a tenant, origin or route the change updates was changed or deleted by another command since it was planned (Retry-After; the steps before it stay applied, the rest are not: apply again to finish)`,
  { 'Retry-After': RESPONSE_HEADERS['Retry-After'] },
);
const ROUTE_RESTORE_UNPURGEABLE = errorResponse(
  'cache_purge_unavailable: a route the change restores under its old id is purged first (so it never serves what it cached before), and the cache store is unreachable; nothing was changed',
);

const ROLLBACK_UNAVAILABLE = errorResponse(
  'cache_purge_unavailable: a route the rollback restores under its old id is purged first (so it never serves what it cached before), and the cache store is unreachable; nothing was changed. read_limit_exceeded: folding the config at to_position needs more events of the event log than CONTROL_PLANE_CONFIG_READ_MAX_EVENTS (details[0].field config_read_max_events): nothing was changed, what was read is kept, so the same request sent after Retry-After goes on from there; read_timeout: a read of the config at to_position ran past CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS (retry later)',
);

/** Statuses of every command: success, 202 on a rollout wait that ran out, and its failures. */
function commandResponses(
  status: '200' | '201' | '204',
  body: unknown | null,
  options: { post: boolean; ifMatch: boolean; created?: boolean; extra?: Record<string, unknown> },
) {
  const headers: Record<string, unknown> = {
    'X-Event-Position': RESPONSE_HEADERS['X-Event-Position'],
    ETag: RESPONSE_HEADERS.ETag,
    'X-Rollout': RESPONSE_HEADERS['X-Rollout'],
    'Cache-Control': RESPONSE_HEADERS.CommandCacheControl,
    ...(options.created ? { Location: RESPONSE_HEADERS.Location } : {}),
    ...(options.post ? { 'Idempotent-Replayed': RESPONSE_HEADERS['Idempotent-Replayed'] } : {}),
  };
  return {
    [status]: { description: 'done', headers, ...(body === null ? {} : { content: json(body) }) },
    '202': {
      description:
        'wait_for_rollout ran out, the new config could not be published (rollout.publish_error, answered at once) or its tenant is quarantined in the snapshots (rollout.quarantined_since, answered at once), or the rollout status could not be read (X-Rollout: unknown): the change is recorded, not known to be live on every replica',
      headers,
      content: json({
        type: 'object',
        required: ['resource', 'rollout'],
        properties: {
          resource: body === null ? { type: 'null' } : body,
          rollout: { anyOf: [ref('RolloutStatus'), { type: 'null' }] },
        },
      }),
    },
    '400': E.badRequest,
    '401': E.unauthenticated,
    '403': E.forbidden,
    '404': E.notFound,
    '409': E.conflict,
    ...(options.ifMatch ? { '412': E.stale } : {}),
    '413': E.tooLarge,
    '415': E.mediaType,
    '422': E.unprocessable,
    ...options.extra,
  };
}

interface ResourceSpec {
  collection: string;
  schema: string;
  tag: string;
  /** operationIds, e.g. listTenants, createTenant, getTenant, updateTenant, deleteTenant. */
  ops: { list: string; create: string; get: string; update?: string; delete: string };
  createBody: string;
  /** Named request examples of the create command. */
  createExamples?: Record<string, { summary: string; value: unknown }>;
  updateBody?: string;
  deleteSummary: string;
}

const RESOURCES: ResourceSpec[] = [
  {
    collection: 'tenants',
    schema: 'Tenant',
    tag: 'Tenants',
    ops: {
      list: 'listTenants',
      create: 'createTenant',
      get: 'getTenant',
      update: 'updateTenant',
      delete: 'deleteTenant',
    },
    createBody: 'CreateTenant',
    updateBody: 'UpdateTenant',
    deleteSummary: 'Delete a tenant (platform admins): its traffic stops, its subdomain is freed',
  },
  {
    collection: 'users',
    schema: 'User',
    tag: 'Users',
    ops: {
      list: 'listUsers',
      create: 'addUser',
      get: 'getUser',
      update: 'changeUserRole',
      delete: 'removeUser',
    },
    createBody: 'CreateUser',
    updateBody: 'UpdateUser',
    deleteSummary: 'Remove a user from its tenant (a tenant keeps at least one owner)',
  },
  {
    collection: 'origins',
    schema: 'Origin',
    tag: 'Origins',
    ops: {
      list: 'listOrigins',
      create: 'addOrigin',
      get: 'getOrigin',
      update: 'updateOrigin',
      delete: 'removeOrigin',
    },
    createBody: 'CreateOrigin',
    updateBody: 'UpdateOrigin',
    deleteSummary: 'Remove an origin',
  },
  {
    collection: 'routes',
    schema: 'Route',
    tag: 'Routes',
    ops: {
      list: 'listRoutes',
      create: 'createRoute',
      get: 'getRoute',
      update: 'updateRoute',
      delete: 'deleteRoute',
    },
    createBody: 'CreateRoute',
    createExamples: ROUTE_POLICY_EXAMPLES,
    updateBody: 'UpdateRoute',
    deleteSummary: 'Delete a route',
  },
  {
    collection: 'api-keys',
    schema: 'ApiKey',
    tag: 'API keys',
    ops: {
      list: 'listApiKeys',
      create: 'issueApiKey',
      get: 'getApiKey',
      update: 'updateApiKey',
      delete: 'deleteApiKey',
    },
    createBody: 'CreateApiKey',
    updateBody: 'UpdateApiKey',
    deleteSummary: 'Revoke an API key (keys are never erased)',
  },
  {
    collection: 'certificates',
    schema: 'Certificate',
    tag: 'Certificates',
    ops: {
      list: 'listCertificates',
      create: 'uploadCertificate',
      get: 'getCertificate',
      delete: 'deleteCertificate',
    },
    createBody: 'UploadCertificate',
    deleteSummary:
      'Delete a certificate: gateways stop serving it (the default certificate answers); 409 while an origin presents it (tls.client_certificate_id)',
  },
];

const QUERY_ERRORS = { '400': E.badRequest, '401': E.unauthenticated, '503': E.notCaughtUp };

function resourcePaths(r: ResourceSpec): Record<string, unknown> {
  const created = r.schema === 'ApiKey' ? ref('IssuedApiKey') : ref(r.schema);
  const collection = {
    get: {
      operationId: r.ops.list,
      tags: [r.tag],
      summary: `List ${r.collection} the caller can see, oldest first`,
      parameters: [
        ...(r.collection === 'tenants' ? [] : [TENANT_FILTER]),
        ...(TAGGED_COLLECTIONS.has(r.collection) ? [TAGS_FILTER] : []),
        LIMIT,
        CURSOR,
        MIN_POSITION,
      ],
      responses: {
        '200': { description: 'a page', content: json(page(ref(`${r.schema}ListItem`))) },
        ...QUERY_ERRORS,
        ...(r.collection === 'tenants' ? {} : { '404': E.notFound }),
      },
    },
    post: {
      operationId: r.ops.create,
      tags: [r.tag],
      summary:
        r.collection === 'tenants'
          ? 'Create a tenant (platform admins)'
          : r.schema === 'Certificate'
            ? 'Upload a TLS certificate of a tenant, served for its verified custom domains or (with no domains) presented to origins as a client certificate; the private key is stored sealed and never returned'
            : `Create ${r.schema === 'ApiKey' ? 'an API key (the plaintext is in this answer only)' : `a ${r.schema.toLowerCase()}`}`,
      parameters: [IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
      requestBody: {
        required: true,
        content: r.createExamples
          ? { 'application/json': { schema: ref(r.createBody), examples: r.createExamples } }
          : json(ref(r.createBody)),
      },
      responses: commandResponses('201', created, {
        post: true,
        ifMatch: false,
        created: true,
        ...(r.schema === 'Certificate' ? { extra: { '503': CERTIFICATES_UNAVAILABLE } } : {}),
      }),
    },
  };
  const item: Record<string, unknown> = {
    get: {
      operationId: r.ops.get,
      tags: [r.tag],
      summary: `Get a ${r.schema === 'ApiKey' ? 'n API key' : ` ${r.schema.toLowerCase()}`}`.replace(
        'a  ',
        'a ',
      ),
      // An API key's quota counters move with traffic, not with its revision: its GET never answers 304.
      parameters: r.schema === 'ApiKey' ? [ID_PARAM, MIN_POSITION] : [ID_PARAM, MIN_POSITION, IF_NONE_MATCH],
      responses: {
        '200': {
          description: r.schema === 'ApiKey' ? 'the key, with what is left of its quota' : 'the resource',
          headers: { ETag: RESPONSE_HEADERS.ReadETag },
          content: json(ref(r.schema === 'ApiKey' ? 'ApiKeyWithQuota' : r.schema)),
        },
        ...(r.schema === 'ApiKey'
          ? {}
          : {
              '304': {
                description: 'not modified: If-None-Match names the current revision',
                headers: { ETag: RESPONSE_HEADERS.ReadETag },
              },
            }),
        ...QUERY_ERRORS,
        '404': E.notFound,
      },
    },
    delete: {
      operationId: r.ops.delete,
      tags: [r.tag],
      summary: r.deleteSummary,
      parameters: [ID_PARAM, IF_MATCH, WAIT_FOR_ROLLOUT],
      responses: commandResponses('204', null, { post: false, ifMatch: true }),
    },
  };
  if (r.ops.update && r.updateBody) {
    item['patch'] = {
      operationId: r.ops.update,
      tags: [r.tag],
      summary: `Update a ${r.schema.toLowerCase()}: top-level fields replace whole values; no body or no change appends nothing`,
      parameters: [ID_PARAM, IF_MATCH, WAIT_FOR_ROLLOUT],
      // No body means no change, unless the body has a required field (a user's role).
      requestBody: { required: r.updateBody === 'UpdateUser', content: json(ref(r.updateBody)) },
      responses: commandResponses('200', ref(r.schema), { post: false, ifMatch: true }),
    };
  }
  return { [`/api/v1/${r.collection}`]: collection, [`/api/v1/${r.collection}/{id}`]: item };
}

const DOMAIN_PARAM = {
  name: 'domain',
  in: 'path',
  required: true,
  description:
    'the host name (any case or Unicode; matched in its canonical form); one that cannot be a custom domain → 404',
  schema: { type: 'string', pattern: SAFE_TEXT_PATTERN },
};

/** Custom domains: claim (pending), prove ownership with a DNS TXT record (verified), remove. */
function customDomainPaths(): Record<string, unknown> {
  const tags = ['Custom domains'];
  return {
    '/api/v1/tenants/{id}/domains': {
      get: {
        operationId: 'listCustomDomains',
        tags,
        summary: "List the tenant's custom domains (pending and verified)",
        parameters: [ID_PARAM, MIN_POSITION],
        responses: {
          '200': {
            description: 'every domain of the tenant (at most 50)',
            content: json({
              type: 'object',
              required: ['data', 'next_cursor'],
              properties: {
                data: { type: 'array', items: ref('CustomDomainListItem') },
                next_cursor: { type: 'null' },
              },
            }),
          },
          ...QUERY_ERRORS,
          '404': E.notFound,
        },
      },
      post: {
        operationId: 'addCustomDomain',
        tags,
        summary:
          'Claim a host name for the tenant: pending (serving nothing, reserving nothing) until verified; 409 when another tenant holds it verified. Platform admins may pass verified: true to assign it.',
        parameters: [ID_PARAM, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
        requestBody: { required: true, content: json(ref('AddCustomDomain')) },
        responses: commandResponses('201', ref('CustomDomain'), {
          post: true,
          ifMatch: false,
          created: true,
        }),
      },
    },
    '/api/v1/tenants/{id}/domains/{domain}': {
      get: {
        operationId: 'getCustomDomain',
        tags,
        summary: 'Get one custom domain',
        parameters: [ID_PARAM, DOMAIN_PARAM, MIN_POSITION],
        responses: {
          '200': { description: 'the domain', content: json(ref('CustomDomain')) },
          ...QUERY_ERRORS,
          '404': E.notFound,
        },
      },
      delete: {
        operationId: 'removeCustomDomain',
        tags,
        summary: 'Remove a custom domain: it stops serving on every replica and the name is free again',
        parameters: [ID_PARAM, DOMAIN_PARAM, IF_MATCH, WAIT_FOR_ROLLOUT],
        responses: commandResponses('204', null, { post: false, ifMatch: true }),
      },
    },
    '/api/v1/tenants/{id}/domains/{domain}/verify': {
      post: {
        operationId: 'verifyCustomDomain',
        tags,
        summary:
          'Look up the TXT record _vantageedge-challenge.<domain> (DNS_RESOLVER) and verify the domain when it holds the value issued for this tenant and domain; only then it serves and its name is held for the tenant. 422 domain_verification_failed otherwise; 409 when another tenant verified the name first',
        parameters: [ID_PARAM, DOMAIN_PARAM, IF_MATCH, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
        responses: commandResponses('200', ref('CustomDomain'), { post: true, ifMatch: true }),
      },
    },
  };
}

const POSITION_PATTERN = '^[0-9]{1,19}$';
const AT_POSITION = {
  name: 'at_position',
  in: 'query',
  description: 'the config after this event position (default: now); beyond the newest event → 400',
  schema: { type: 'string', pattern: POSITION_PATTERN },
};

/**
 * A tenant's config as of any event position, its diff and history, and the declarative commands:
 * plan and apply a tenant document, roll back to an earlier position.
 */
function configPaths(): Record<string, unknown> {
  const tags = ['Config'];
  const configETag = header(
    'the config version (for If-Match on apply); read without write access (match and split override values <redacted>) it is "n-redacted", another representation',
    { type: 'string' },
  );
  /** A config read: `versioned`, it sends the config version's ETag and answers If-None-Match. */
  const read = (
    operationId: string,
    summary: string,
    parameters: unknown[],
    schema: string,
    versioned = true,
  ) => ({
    get: {
      operationId,
      tags,
      summary,
      parameters: [ID_PARAM, ...parameters],
      responses: {
        '200': {
          description: 'the config',
          ...(versioned ? { headers: { ETag: configETag } } : {}),
          content: json(ref(schema)),
        },
        ...(versioned
          ? {
              '304': {
                description:
                  'not modified: If-None-Match names the ETag of the config as the caller reads it',
                headers: { ETag: configETag },
              },
            }
          : {}),
        ...QUERY_ERRORS,
        '404': errorResponse(
          'not_found: no such tenant (or one the caller cannot see: the same answer), or it had no config at that position',
        ),
      },
    },
  });
  return {
    '/api/v1/tenants/{id}/config': read(
      'getTenantConfig',
      "The tenant's whole gateway config as the gateways served it after an event position (snapshot version = position of the tenant's last event up to it); credential request header and query parameter values show as <redacted>",
      [AT_POSITION, MIN_POSITION],
      'TenantConfig',
    ),
    '/api/v1/tenants/{id}/config/document': read(
      'getTenantConfigDocument',
      "The config as a tenant document (what vantageedge dump writes): apply it to get this config back (a credential header's or query parameter's <redacted> value keeps the stored one)",
      [AT_POSITION, SELECT_TAGS, MIN_POSITION],
      'TenantConfigDocumentAnswer',
    ),
    '/api/v1/tenants/{id}/config/diff': {
      get: {
        ...read('diffTenantConfig', '', [], 'TenantConfigDiff', false).get,
        summary:
          'What changed between the configs at two event positions: resources added, removed, changed, by field (credential header and query parameter values as <redacted>)',
        parameters: [
          ID_PARAM,
          {
            name: 'from',
            in: 'query',
            required: true,
            schema: { type: 'string', pattern: POSITION_PATTERN },
          },
          {
            name: 'to',
            in: 'query',
            description: 'default: now',
            schema: { type: 'string', pattern: POSITION_PATTERN },
          },
          MIN_POSITION,
        ],
      },
    },
    '/api/v1/tenants/{id}/config/history': {
      get: {
        operationId: 'listTenantConfigHistory',
        tags,
        summary:
          "Every change of the tenant's gateway config and every rollback, newest first (tenant writers and platform admins)",
        parameters: [ID_PARAM, LIMIT, CURSOR, MIN_POSITION],
        responses: {
          '200': { description: 'a page of changes', content: json(page(ref('TenantConfigHistoryEntry'))) },
          ...QUERY_ERRORS,
          '403': E.forbidden,
          '404': E.notFound,
        },
      },
    },
    '/api/v1/tenants/{id}/explain': {
      post: {
        operationId: 'explainTenantRequest',
        tags,
        summary:
          "What the gateways would do with a request, at the tenant's config now or after an event position: host, route (and why each other route does not match), auth, rate limits, quotas (with what is left of each, read from the gateways' counters and never spent), cache, origin (appends nothing; read access)",
        parameters: [ID_PARAM, MIN_POSITION],
        requestBody: { required: true, content: json(ref('ExplainRequest')) },
        responses: {
          '200': { description: 'the explanation', content: json(ref('RequestExplanation')) },
          '400': E.badRequest,
          '401': E.unauthenticated,
          '413': E.tooLarge,
          '404': errorResponse(
            'not_found: no such tenant (or one the caller cannot see: the same answer), or it had no config at that position',
          ),
          '503': errorResponse(
            'not_caught_up: the read models have not reached X-Min-Position yet; read_limit_exceeded: folding the config at that position needs more events of the event log than CONTROL_PLANE_CONFIG_READ_MAX_EVENTS (details[0].field config_read_max_events): what was read is kept, so the same request sent after Retry-After goes on from there; read_timeout: a read ran past CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS (retry later)',
            { 'Retry-After': RESPONSE_HEADERS['Retry-After'] },
          ),
        },
      },
    },
    '/api/v1/tenants/{id}/config/plan': {
      post: {
        operationId: 'planTenantConfig',
        tags,
        summary:
          "What applying a tenant document would change (appends nothing; a credential header's or query parameter's <redacted> value keeps the stored one and is no change). For a caller who may write the tenant, its steps are rehearsed as apply's are: a document apply would refuse is refused with apply's 4xx and error",
        parameters: [ID_PARAM],
        requestBody: { required: true, content: json(ref('TenantConfigDocument')) },
        responses: commandResponses('200', ref('TenantConfigChange'), { post: false, ifMatch: false }),
      },
    },
    '/api/v1/tenants/{id}/config/apply': {
      post: {
        operationId: 'applyTenantConfig',
        tags,
        summary:
          'Make the tenant what a document says, by ordinary commands (If-Match: the config version the plan was made on)',
        parameters: [ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
        requestBody: { required: true, content: json(ref('TenantConfigDocument')) },
        responses: commandResponses('200', ref('TenantConfigChange'), {
          post: true,
          ifMatch: true,
          extra: { '409': CONFIG_CHANGE_CONFLICT, '503': ROUTE_RESTORE_UNPURGEABLE },
        }),
      },
    },
    '/api/v1/tenants/{id}/config/rollback': {
      post: {
        operationId: 'rollbackTenantConfig',
        tags,
        summary:
          'Restore the config the tenant had after an event position: recorded as ConfigRolledBack, then the compensating commands (API keys, users and custom domains are left as they are). dry_run: true appends nothing and answers what the rollback would: its changes, or its 4xx and error (the same limits and the same rehearsal of its steps); it keeps no answer for an Idempotency-Key (sent again, it runs again). If-Match: the config version it was reviewed on (the ETag of its dry run); 412 once the config moved since',
        parameters: [ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
        requestBody: { required: true, content: json(ref('RollbackTenantConfig')) },
        responses: commandResponses('200', ref('TenantConfigChange'), {
          post: true,
          ifMatch: true,
          extra: { '409': CONFIG_CHANGE_CONFLICT, '503': ROLLBACK_UNAVAILABLE },
        }),
      },
    },
  };
}

function apiKeyActions(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [action, operationId, schema, status, summary] of [
    [
      'rotate',
      'rotateApiKey',
      'RotateApiKey',
      '201',
      'Rotate an API key: a new key; the old one works for the grace period',
    ],
    ['revoke', 'revokeApiKey', 'RevokeApiKey', '200', 'Revoke an API key'],
  ] as const) {
    paths[`/api/v1/api-keys/{id}/${action}`] = {
      post: {
        operationId,
        tags: ['API keys'],
        summary,
        parameters: [ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
        requestBody: { required: false, content: json(ref(schema)) },
        responses: commandResponses(status, ref(action === 'rotate' ? 'IssuedApiKey' : 'ApiKey'), {
          post: true,
          ifMatch: true,
          created: action === 'rotate',
        }),
      },
    };
  }
  return paths;
}

const CERTIFICATES_UNAVAILABLE = errorResponse(
  'certificates_unavailable: this control plane has no CERTIFICATE_ENCRYPTION_KEY',
);

function certificateActions(): Record<string, unknown> {
  return {
    '/api/v1/certificates/{id}/reseal': {
      post: {
        operationId: 'resealCertificateKey',
        tags: ['Certificates'],
        summary:
          "Seal the certificate's private key again under the current CERTIFICATE_ENCRYPTION_KEY (after a rotation of that key; a no-op when it already is)",
        parameters: [ID_PARAM, IF_MATCH, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
        responses: commandResponses('200', ref('Certificate'), {
          post: true,
          ifMatch: true,
          extra: { '503': CERTIFICATES_UNAVAILABLE },
        }),
      },
    },
  };
}

function cachePurgePaths(): Record<string, unknown> {
  const purge = (operationId: string, summary: string) => ({
    post: {
      operationId,
      tags: ['Cache'],
      summary,
      description:
        'Answered 200 once the purge is done in the shared cache store and announced to the gateway replicas, each of which drops its in-memory copies as the announcement reaches it (normally within milliseconds). A response its origin was still sending when a purge by tag or prefix came is not stored.',
      parameters: [ID_PARAM, IDEMPOTENCY_KEY, WAIT_FOR_ROLLOUT],
      responses: commandResponses('200', ref('CachePurge'), {
        post: true,
        ifMatch: false,
        extra: {
          '503': errorResponse('cache_purge_unavailable: no cache to purge (no REDIS_URL) or Redis is down'),
        },
      }),
    },
  });
  return {
    '/api/v1/routes/{id}/cache/purge': purge(
      'purgeRouteCache',
      "Purge a route's cached responses on every gateway replica",
    ),
    '/api/v1/tenants/{id}/cache/purge': {
      post: {
        ...purge(
          'purgeTenantCache',
          "Purge all of a tenant's cached responses, or with `tags` those its origins tagged (Surrogate-Key / Cache-Tag) and with `prefixes` those whose path is at or below a prefix",
        ).post,
        requestBody: {
          required: false,
          content: json({
            type: 'object',
            additionalProperties: false,
            properties: {
              tags: {
                type: 'array',
                minItems: 1,
                maxItems: 64,
                items: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\t\\n\\v\\f\\r ,]+$' },
              },
              prefixes: {
                type: 'array',
                minItems: 1,
                maxItems: 64,
                description:
                  'path prefixes on segment boundaries (`/products/` and `/products` both mean the segment `products` and everything below it), read as the gateway reads request paths; at most 8 segments, no query, no `.`/`..` or empty segments, not `/` alone (purge without a body for the whole tenant)',
                items: { type: 'string', minLength: 2, maxLength: 1024, pattern: '^/' },
              },
              soft: {
                type: 'boolean',
                description:
                  'with tags or prefixes: mark the responses stale (revalidated, kept for stale-if-error)',
              },
            },
          }),
        },
      },
    },
  };
}

function operationsPaths(): Record<string, unknown> {
  const NOT_MODIFIED = { description: 'not modified: If-None-Match names the ETag of the document as it is' };
  const open = (operationId: string, summary: string, responses: Record<string, unknown>) => ({
    get: { operationId, tags: ['Operations'], summary, security: [], responses },
  });
  return {
    '/healthz': open('getHealth', 'Liveness: the process runs', {
      '200': {
        description: 'ok',
        content: json({ type: 'object', properties: { status: { const: 'ok' } } }),
      },
    }),
    '/readyz': open('getReadiness', 'Readiness: PostgreSQL and the event store answer', {
      '200': { description: 'ready', content: json(ref('Readiness')) },
      '503': { description: 'not ready', content: json(ref('Readiness')) },
    }),
    '/openapi.json': open('getOpenApiDocument', 'This document', {
      '200': { description: 'OpenAPI 3.1 (with an ETag)', content: json({ type: 'object' }) },
      '304': NOT_MODIFIED,
    }),
    '/schemas/tenant-config.json': open(
      'getTenantConfigSchema',
      'The JSON Schema of a tenant document (editors validate vantageedge dump files with it)',
      {
        '200': {
          description: 'JSON Schema 2020-12 (with an ETag)',
          content: { 'application/schema+json': { schema: { type: 'object' } } },
        },
        '304': NOT_MODIFIED,
      },
    ),
    '/docs': open('getApiReference', 'The API reference (rendered from this document)', {
      '200': { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } },
    }),
  };
}

function otherPaths(): Record<string, unknown> {
  return {
    '/api/v1/tenants/{id}/rollout': {
      get: {
        operationId: 'getTenantRollout',
        tags: ['Tenants'],
        summary: "Which gateway replicas serve which version of the tenant's config",
        parameters: [
          ID_PARAM,
          {
            ...WAIT_FOR_ROLLOUT,
            description:
              'wait until every live replica has the newest version (200), or answer 202 when the time runs out',
          },
          {
            name: 'min_position',
            in: 'query',
            description: "with wait_for_rollout: the change to wait for (a command's X-Event-Position)",
            schema: { type: 'string', pattern: HEADER_PATTERNS.minPosition },
          },
        ],
        responses: {
          '200': { description: 'the rollout status', content: json(ref('RolloutStatus')) },
          '202': {
            description:
              'the wait ran out, or the newest version was not published (publish_error) or the tenant is quarantined in the snapshots (quarantined_since), both answered at once; the status now',
            content: json(ref('RolloutStatus')),
          },
          '400': E.badRequest,
          '401': E.unauthenticated,
          '404': E.notFound,
          '503': errorResponse(
            'rollout_status_unavailable: the heartbeats (Redis) or the snapshot state cannot be read now (Retry-After)',
          ),
        },
      },
    },
    '/api/v1/audit-log': {
      get: {
        operationId: 'listAuditLog',
        tags: ['Audit log'],
        summary: 'Who changed what, newest first, over the tenants the caller administers',
        parameters: [
          TENANT_FILTER,
          {
            name: 'resource_type',
            in: 'query',
            schema: { type: 'string', enum: [...RESOURCE_TYPES] },
          },
          {
            name: 'resource_id',
            in: 'query',
            schema: { type: 'string', minLength: 1, maxLength: 200, pattern: SAFE_TEXT_PATTERN },
          },
          {
            name: 'actor',
            in: 'query',
            schema: { type: 'string', minLength: 1, maxLength: 200, pattern: SAFE_TEXT_PATTERN },
          },
          { name: 'event_type', in: 'query', schema: { type: 'string', pattern: '^[A-Za-z]{1,100}$' } },
          {
            name: 'from',
            in: 'query',
            description: 'occurred at or after',
            schema: { type: 'string', format: 'date-time' },
          },
          {
            name: 'to',
            in: 'query',
            description: 'occurred before; an empty range finds nothing',
            schema: { type: 'string', format: 'date-time' },
          },
          LIMIT,
          CURSOR,
          MIN_POSITION,
        ],
        responses: {
          '200': {
            description:
              "a page of audit entries. In a listing of all the caller's tenants (no tenant_id), the entries of a tenant whose config read budget is in debt are left out and the tenant is named in omitted_tenants (absent when none is): read its entries with tenant_id after retry_after_seconds (the page's next_cursor goes on past them). With every tenant of the listing in debt, 429 admin_rate_limited as for tenant_id",
            content: json({
              ...page(ref('AuditEntry')),
              properties: {
                ...page(ref('AuditEntry')).properties,
                omitted_tenants: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['tenant_id', 'code', 'field', 'retry_after_seconds'],
                    properties: {
                      tenant_id: { type: 'string', format: 'uuid' },
                      code: { type: 'string', enum: ['admin_rate_limited'] },
                      field: { type: 'string', enum: ['tenant_config_read_bytes_per_minute'] },
                      retry_after_seconds: { type: 'integer', minimum: 1 },
                    },
                  },
                },
              },
            }),
          },
          ...QUERY_ERRORS,
          '403': E.forbidden,
          '404': E.notFound,
        },
      },
    },
    '/api/v1/admin/republish-snapshots': {
      post: {
        operationId: 'republishSnapshots',
        tags: ['Operations'],
        summary:
          "Queue every tenant's gateway snapshot to be published again (a lost snapshot topic; platform admins)",
        responses: {
          '202': {
            description: 'queued',
            content: json({
              type: 'object',
              required: ['republish'],
              properties: {
                republish: {
                  type: 'object',
                  required: ['queued_tenants'],
                  properties: { queued_tenants: { type: 'integer', minimum: 0 } },
                },
              },
            }),
          },
          '401': E.unauthenticated,
          '403': E.forbidden,
        },
      },
    },
    '/api/v1/admin/replay': {
      get: {
        operationId: 'getReplay',
        tags: ['Operations'],
        summary: 'Progress of the last read-model replay this process started (platform admins)',
        responses: {
          '200': { description: 'the replay', content: json(ref('ReplayAnswer')) },
          '401': E.unauthenticated,
          '403': E.forbidden,
        },
      },
      post: {
        operationId: 'startReplay',
        tags: ['Operations'],
        summary: 'Rebuild every read model from the event log and swap it in (platform admins)',
        responses: {
          '202': {
            description: 'started',
            headers: { Location: RESPONSE_HEADERS.Location },
            content: json(ref('ReplayAnswer')),
          },
          '401': E.unauthenticated,
          '403': E.forbidden,
          '409': errorResponse('conflict: a replay is already running'),
        },
      },
    },
  };
}

const nullableString = { type: ['string', 'null'] };
const RESPONSE_SCHEMAS = {
  CachePurge: {
    type: 'object',
    required: ['id', 'tenant_id', 'route_id', 'purged_at'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      tenant_id: { type: 'string', format: 'uuid' },
      route_id: { type: ['string', 'null'], format: 'uuid' },
      tags: { type: 'array', items: { type: 'string' } },
      prefixes: {
        type: 'array',
        items: { type: 'string' },
        description: 'the purged path prefixes, normalised (`/products/` is recorded as `/products`)',
      },
      soft: { type: 'boolean' },
      purged_at: { type: 'string', format: 'date-time' },
    },
  },
  RolloutStatus: {
    type: 'object',
    required: [
      'tenant_id',
      'target_version',
      'deleted',
      'projected_position',
      'replicas',
      'live_everywhere',
      'quarantined_since',
      'publish_error',
    ],
    properties: {
      tenant_id: { type: 'string' },
      target_version: { type: 'string', pattern: '^[0-9]+$' },
      deleted: {
        type: 'boolean',
        description:
          'no replica is to serve the tenant: it was deleted, or it has no gateway config because the snapshot fold refused its creation or a refold dropped it (quarantined_since names the refused event; target_version is "0" when it never had one); up to date then means the replica does not have it',
      },
      projected_position: { type: 'string', pattern: '^[0-9]+$' },
      live_everywhere: {
        type: 'boolean',
        description:
          'every live replica serves target_version and target_version holds every change of the tenant (false while quarantined_since is set)',
      },
      quarantined_since: {
        type: ['string', 'null'],
        pattern: '^[0-9]+$',
        description:
          'the position of the tenant event the snapshot projector could not fold (it parked it): no later change of the tenant reaches its snapshot or any replica until the snapshots are refolded; null otherwise',
      },
      publish_error: {
        ...nullableString,
        description:
          'why target_version was not published (too large for the snapshot bus, or for gateways to decode): no replica gets it and they keep serving the previous config until the next change; null otherwise',
      },
      replicas: {
        type: 'array',
        items: {
          type: 'object',
          required: ['replica_id', 'applied_version', 'last_seen', 'up_to_date'],
          properties: {
            replica_id: { type: 'string' },
            applied_version: nullableString,
            last_seen: { type: 'string', format: 'date-time' },
            up_to_date: { type: 'boolean' },
          },
        },
      },
    },
  },
  AuditEntry: {
    type: 'object',
    required: [
      'position',
      'event_id',
      'event_type',
      'resource_type',
      'resource_id',
      'tenant_id',
      'actor',
      'occurred_at',
    ],
    properties: {
      position: { type: 'string', pattern: '^[0-9]+$' },
      event_id: { type: 'string' },
      event_type: { type: 'string' },
      resource_type: { type: 'string' },
      resource_id: { type: 'string' },
      tenant_id: nullableString,
      actor: { type: 'string' },
      occurred_at: { type: 'string', format: 'date-time' },
      correlation_id: { type: 'string' },
      causation_id: nullableString,
      stream: { type: 'string' },
      stream_revision: { type: 'string' },
      data: { description: 'the event data, secrets removed' },
    },
  },
  ReplayAnswer: {
    type: 'object',
    required: ['replay'],
    properties: {
      replay: {
        type: 'object',
        required: ['status', 'started_at', 'finished_at', 'events', 'position', 'head_position', 'error'],
        properties: {
          status: { type: 'string', enum: ['idle', 'running', 'succeeded', 'failed'] },
          started_at: nullableString,
          finished_at: nullableString,
          events: { type: 'integer' },
          position: { type: 'string' },
          head_position: { type: 'string' },
          events_per_second: { type: 'number' },
          error: nullableString,
        },
      },
    },
  },
  Readiness: {
    type: 'object',
    required: ['status', 'checks'],
    properties: {
      status: { type: 'string', enum: ['ready', 'not_ready'] },
      reason: {
        type: 'string',
        enum: ['shutting down'],
        description: 'present when the control plane is stopping (SIGTERM); no checks are run then',
      },
      checks: {
        type: 'object',
        description: 'each check: ok, or unavailable (its error is in the service log)',
        additionalProperties: { type: 'string', enum: ['ok', 'unavailable'] },
      },
    },
  },
  JsonValue: {
    description: 'any JSON value whose strings and keys are safe text',
    anyOf: [
      { type: 'null' },
      { type: 'boolean' },
      { type: 'number' },
      { type: 'string', pattern: SAFE_TEXT_PATTERN },
      { type: 'array', items: ref('JsonValue') },
      {
        type: 'object',
        propertyNames: { type: 'string', pattern: SAFE_TEXT_PATTERN },
        additionalProperties: ref('JsonValue'),
      },
    ],
  },
};

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const resource of RESOURCES) Object.assign(paths, resourcePaths(resource));
  Object.assign(
    paths,
    apiKeyActions(),
    certificateActions(),
    cachePurgePaths(),
    customDomainPaths(),
    configPaths(),
    otherPaths(),
    operationsPaths(),
    consolePaths(),
    usagePaths({
      '400': E.badRequest,
      '401': E.unauthenticated,
      '404': E.notFound,
      '422': errorResponse(
        'limit_exceeded: the range holds more counts than one request reads within USAGE_QUERY_TIMEOUT_MS (details: from); ask for a shorter range or filter',
      ),
    }),
  );
  withCommonAnswers(paths);

  return {
    openapi: '3.1.0',
    info: {
      title: 'VantageEdge control plane',
      version: '1.0.0',
      description: [
        'Admin API of the VantageEdge multi-tenant API gateway. Commands append events; queries read projections.',
        'Errors: {"error":{"code","message","details":[{"field","issue"}]}}; at most 100 details, the last of them then "and N more problems, not listed" (field body).',
        'Request strings must not contain U+0000 or unpaired surrogates (400).',
        'JSON bodies are UTF-8 (another charset → 415) and name each member of an object once (I-JSON, RFC 7493): a repeated name, also when spelled with escapes → 400 validation_failed, the detail naming its path (e.g. cors.allow_origins).',
        'Paths are matched exactly: in another case or with a trailing slash → 404 not_found. A method a path does not serve → 405 with Allow; OPTIONS → 204 with Allow.',
        'The body of a GET, HEAD or DELETE is never read: it is neither parsed nor refused.',
        'The database unreachable, too slow to free a pooled connection within CONTROL_PLANE_POOL_WAIT_MS, or a statement unanswered for POSTGRES_STATEMENT_DEADLINE_MS → 503 store_unavailable with Retry-After on any /api/v1 request (a command whose change may or may not have been stored says so: send it again with the same Idempotency-Key).',
        'Every /api/v1 request counts against its caller’s rate limit and every command against its tenant’s: over one → 429 admin_rate_limited with Retry-After.',
      ].join(' '),
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
        CreateOrigin: withOriginRules(input(createOriginBody), true),
        UpdateOrigin: withOriginRules(input(updateOriginBody), false),
        CreateRoute: input(createRouteBody),
        UpdateRoute: input(updateRouteBody),
        CreateApiKey: input(createApiKeyBody),
        UpdateApiKey: input(updateApiKeyBody),
        AddCustomDomain: input(createCustomDomainBody),
        RotateApiKey: input(rotateApiKeyBody),
        UploadCertificate: input(uploadCertificateBody),
        RevokeApiKey: input(revokeApiKeyBody),
        Tenant: output(tenantResource),
        User: output(userResource),
        Origin: output(originResource),
        Route: output(routeResource),
        ApiKey: output(apiKeyResource),
        IssuedApiKey: output(issuedApiKeyResource),
        ApiKeyWithQuota: output(apiKeyWithQuotaResource),
        UsageReport: output(usageReportResource),
        Certificate: output(certificateResource),
        TenantListItem: output(listItem(tenantResource)),
        UserListItem: output(listItem(userResource)),
        OriginListItem: output(listItem(originResource)),
        RouteListItem: output(listItem(routeResource)),
        ApiKeyListItem: output(listItem(apiKeyResource)),
        CertificateListItem: output(listItem(certificateResource)),
        CustomDomain: output(customDomainResource),
        CustomDomainListItem: output(listItem(customDomainResource)),
        TenantConfigDocument: input(configDocument),
        RollbackTenantConfig: input(rollbackBody),
        ExplainRequest: input(explainBody),
        RequestExplanation: output(requestExplanation),
        TenantConfig: output(tenantConfigResource),
        TenantConfigDocumentAnswer: output(configDocumentAnswer),
        TenantConfigDiff: output(configDiff),
        TenantConfigChange: output(configChangeResult),
        TenantConfigHistoryEntry: output(configHistoryEntry),
        Error: output(errorResource),
        ...RESPONSE_SCHEMAS,
      },
    },
  };
}
