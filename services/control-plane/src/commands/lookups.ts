import { streamName } from '@vantageedge/shared/domain/events';
import { clientAuthenticationIssue } from '@vantageedge/shared/tls/certificate-bundle';
import { certificateDecider } from '../domain/certificate.js';
import type { Lifecycle } from '../domain/decision.js';
import { invalid, notFound } from '../domain/errors.js';
import { type Origin, originDecider } from '../domain/origin.js';
import { type Foldable, foldLatest, type StreamReadObserver } from './aggregate-folds.js';
import type { CommandContext, CommandDeps } from './context.js';
import { requireAccess } from './context.js';
import { loadTenant } from './tenant-directory.js';

/**
 * Cross-aggregate checks read the other aggregate's stream from the event store (never the read models,
 * which lag behind), so a command sees every event committed before it started.
 */

/**
 * `not_found` unless the tenant exists and is not deleted, naming `field`: the part of the request that
 * named the tenant (a body's tenant_id, or the path's id of the tenant or of a resource of it).
 */
export async function requireLiveTenant(
  deps: Pick<CommandDeps, 'store' | 'streamFolds'>,
  tenantId: string,
  field: 'tenant_id' | 'id' = 'tenant_id',
): Promise<void> {
  const tenant = await loadTenant(deps.store, tenantId, deps.streamFolds);
  if (tenant.status !== 'active') throw notFound('tenant', field);
}

/**
 * The origin a route points at must be a live origin of the route's own tenant. An origin of a tenant
 * the caller cannot see is not found, as every other tenant's resource is; one of another tenant the
 * caller sees is invalid here.
 */
export async function requireOriginOfTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  originId: string,
  tenantId: string,
): Promise<void> {
  const origin: Origin = await foldLatest(deps.store, streamName.origin(originId), originDecider);
  if (origin.status === 'absent') throw notFound('origin', 'origin_id');
  if (origin.data.tenant_id !== tenantId) {
    await requireAccess(deps, ctx.caller, origin.data.tenant_id, 'read', () =>
      notFound('origin', 'origin_id'),
    );
    throw invalid(
      'the origin belongs to another tenant',
      'origin_id',
      'must be an origin of the same tenant',
    );
  }
  if (origin.status === 'deleted') throw notFound('origin', 'origin_id');
}

/**
 * The client certificate an origin names (tls.client_certificate_id) must be a live certificate of the
 * origin's own tenant whose extended key usage allows client authentication. Another tenant's
 * certificate is not found, whoever asks, exactly as a missing one: its id is never confirmed.
 */
export async function requireClientCertificateOfTenant(
  deps: Pick<CommandDeps, 'store'>,
  certificateId: string,
  tenantId: string,
  onRead?: StreamReadObserver,
): Promise<void> {
  const field = 'tls.client_certificate_id';
  const certificate = await foldLatest(
    deps.store,
    streamName.certificate(certificateId),
    certificateDecider,
    onRead,
  );
  if (certificate.status !== 'active' || certificate.data.tenant_id !== tenantId) {
    throw notFound('certificate', field);
  }
  const issue = clientAuthenticationIssue(certificate.data.certificate_pem);
  if (issue !== undefined)
    throw invalid(`the certificate cannot be a client certificate: ${issue}`, field, issue);
}

/**
 * For commands on a resource by id: `not_found` when it never existed or its tenant is one the caller
 * cannot see (the same answer, so ids of other tenants are not confirmed), `forbidden` when the caller
 * sees its tenant but may not change it. Deleted resources are `not_found` (by the decider).
 */
export async function requireWritableResource<Data extends { tenant_id: string }>(
  deps: CommandDeps,
  ctx: CommandContext,
  state: Lifecycle<Data>,
  what: string,
): Promise<Data> {
  if (state.status === 'absent') throw notFound(what, 'id');
  await requireAccess(deps, ctx.caller, state.data.tenant_id, 'write', () => notFound(what, 'id'));
  return state.data;
}

/**
 * The tenant of a live resource the caller may write, else null (the command itself then answers
 * 403/404): the tenant whose lock an update takes, so a caller never takes the lock of a tenant it
 * may not write.
 */
export async function writableTenantOf<Data extends { tenant_id: string }>(
  deps: Pick<CommandDeps, 'store' | 'authorizer' | 'streamFolds'>,
  ctx: CommandContext,
  stream: string,
  decider: Foldable<Lifecycle<Data>>,
): Promise<string | null> {
  const resource = await foldLatest(deps.store, stream, decider);
  if (resource.status !== 'active') return null;
  const access = await deps.authorizer.access(ctx.caller, resource.data.tenant_id, deps.streamFolds);
  return access === 'write' ? resource.data.tenant_id : null;
}
