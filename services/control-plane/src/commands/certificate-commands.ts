import { randomUUID } from 'node:crypto';
import { type CertificateState, streamName } from '@vantageedge/shared/domain/events';
import { certificateCovers, checkCertificateBundle } from '@vantageedge/shared/tls/certificate-bundle';
import {
  certificateKeyContext,
  type KeyRing,
  openPrivateKey,
  sealPrivateKey,
} from '@vantageedge/shared/tls/private-key-envelope';
import { type Certificate, type CertificateCommand, certificateDecider } from '../domain/certificate.js';
import { tenantDomainsDecider } from '../domain/custom-domain.js';
import { DomainError } from '../domain/decision.js';
import { conflict, notFound } from '../domain/errors.js';
import type { UploadCertificateBody } from '../schemas/requests.js';
import type { CertificateResource } from '../schemas/resources.js';
import { foldLatest } from './aggregate-folds.js';
import { changeResource } from './change-resource.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
} from './context.js';
import { type HandledCommand, handleCommand } from './handle-command.js';
import { requireRoomFor, withCountedCreate } from './tenant-limits.js';
import { certificateView } from './views.js';

function outcome(result: HandledCommand<Certificate>): CommandOutcome<CertificateResource> {
  if (result.state.status === 'absent' || result.revision === null || result.position === null) {
    throw notFound('certificate', 'id');
  }
  return { resource: certificateView(result.state), revision: result.revision, position: result.position };
}

function requireKeyRing(deps: CommandDeps): KeyRing {
  if (deps.certificateKeyRing === undefined) {
    throw new DomainError(
      'unavailable',
      'this control plane cannot store certificates: CERTIFICATE_ENCRYPTION_KEY is not set',
      undefined,
      { code: 'certificates_unavailable' },
    );
  }
  return deps.certificateKeyRing;
}

/**
 * The tenant's verified custom domains (a proven DNS TXT record or a platform admin's assignment),
 * folded from the tenant's stream: a certificate may only be served for these. A pending claim does
 * not count: it serves nothing yet, and may still be another party's name.
 */
async function verifiedCustomDomains(deps: CommandDeps, tenantId: string): Promise<ReadonlySet<string>> {
  const state = await foldLatest(deps.store, streamName.tenant(tenantId), tenantDomainsDecider);
  if (state.tenant.status !== 'active') {
    throw new DomainError('not_found', 'tenant not found', 'tenant_id', { issue: 'no such tenant' });
  }
  const verified = new Set<string>();
  for (const [domain, claim] of state.domains) if (claim.status === 'verified') verified.add(domain);
  return verified;
}

/**
 * Checks that the tenant has room for one more certificate (TENANT_MAX_CERTIFICATES: every certificate
 * is in the tenant's snapshot, which every gateway replica decodes), the chain and key (parse, link by
 * link, validity now, key match), that every named domain is
 * one of the tenant's custom domains and covered by the certificate's SANs; then seals the key under
 * the current key-encryption key and records `CertificateUploaded`. The key in clear exists only in
 * this request's memory.
 */
export async function uploadCertificate(
  deps: CommandDeps,
  ctx: CommandContext,
  body: UploadCertificateBody,
): Promise<CommandOutcome<CertificateResource>> {
  const ring = requireKeyRing(deps);
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  const owned = await verifiedCustomDomains(deps, body.tenant_id);
  // Before the chain is checked (costly); counted again with the append below.
  await requireRoomFor(deps, 'certificates', body.tenant_id);

  const check = checkCertificateBundle({
    certificatePem: body.certificate_pem,
    privateKeyPem: body.private_key_pem,
    now: deps.clock(),
    // A certificate for no domain is never served: only presented to origins as a client certificate.
    servedForHosts: body.domains.length > 0,
  });
  if (!check.ok) {
    const [first] = check.issues;
    const field = first?.field === 'private_key' ? 'private_key_pem' : 'certificate_pem';
    throw new DomainError(
      'invalid',
      check.issues.map((issue) => `${issue.field}: ${issue.issue}`).join('; '),
      field,
    );
  }
  for (const domain of body.domains) {
    if (!owned.has(domain)) {
      throw new DomainError('invalid', `${domain} is not a verified custom domain of this tenant`, 'domains');
    }
    if (!certificateCovers(check.leaf, domain)) {
      throw new DomainError(
        'invalid',
        `the certificate does not cover ${domain} (its names: ${check.facts.dns_names.join(', ')})`,
        'domains',
      );
    }
  }

  const certificateId = randomUUID();
  const certificate: CertificateState = {
    certificate_id: certificateId,
    tenant_id: body.tenant_id,
    domains: body.domains,
    certificate_pem: check.certificatePem,
    private_key: sealPrivateKey(
      ring,
      check.privateKeyPem,
      certificateKeyContext(body.tenant_id, certificateId),
    ),
    fingerprint_sha256: check.facts.fingerprint_sha256,
    subject: check.facts.subject,
    issuer: check.facts.issuer,
    serial_number: check.facts.serial_number,
    dns_names: check.facts.dns_names,
    key_type: check.facts.key_type,
    not_before: check.facts.not_before,
    not_after: check.facts.not_after,
  };
  const result = await withCountedCreate(deps, ctx.caller, body.tenant_id, async () => {
    await requireRoomFor(deps, 'certificates', body.tenant_id);
    return handleCommand({
      store: deps.store,
      snapshotGuard: deps.snapshotGuard,
      commandBudget: deps.commandBudget,
      stream: streamName.certificate(certificateId),
      decider: certificateDecider,
      metadata: () => eventMetadata(deps, ctx, body.tenant_id),
      command: () => ({ type: 'UploadCertificate' as const, certificate }),
    });
  });
  return outcome(result);
}

/**
 * Deletes a certificate no origin presents (tls.client_certificate_id): else 409 naming the origins.
 * Checked under the tenant's lock (changeResource takes it), which an origin naming a certificate takes too.
 */
export async function deleteCertificate(
  deps: CommandDeps,
  ctx: CommandContext,
  certificateId: string,
): Promise<CommandOutcome<CertificateResource>> {
  const result = await changeResource(deps, ctx, {
    stream: streamName.certificate(certificateId),
    decider: certificateDecider,
    what: 'certificate',
    command: async (data): Promise<CertificateCommand> => {
      const users = (await deps.resourceCounts.origins(data.tenant_id)).filter(
        (origin) => origin.tls.client_certificate_id === certificateId,
      );
      if (users.length > 0) {
        const names = users.map((origin) => `${origin.name} (${origin.id})`).join(', ');
        throw conflict(
          `the certificate is the client certificate of origin ${names}: change its tls.client_certificate_id first`,
          'certificate_id',
          `in use by origin ${names}`,
        );
      }
      return { type: 'DeleteCertificate' };
    },
  });
  return outcome(result);
}

/**
 * After CERTIFICATE_ENCRYPTION_KEY changed (the old key in CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS): the
 * certificate's key sealed again under the current key-encryption key. A no-op when it already is.
 */
export async function resealCertificateKey(
  deps: CommandDeps,
  ctx: CommandContext,
  certificateId: string,
): Promise<CommandOutcome<CertificateResource>> {
  const ring = requireKeyRing(deps);
  const result = await changeResource(deps, ctx, {
    stream: streamName.certificate(certificateId),
    decider: certificateDecider,
    what: 'certificate',
    command: async (data): Promise<CertificateCommand> => {
      const context = certificateKeyContext(data.tenant_id, data.certificate_id);
      let privateKeyPem: string;
      try {
        privateKeyPem = openPrivateKey(ring, data.private_key, context);
      } catch (error) {
        throw new DomainError('conflict', `the stored key cannot be opened: ${(error as Error).message}`);
      }
      return { type: 'ResealCertificateKey', privateKey: sealPrivateKey(ring, privateKeyPem, context) };
    },
  });
  return outcome(result);
}

/** For tests and tools: the write-side state of one certificate. */
export async function loadCertificate(deps: CommandDeps, certificateId: string): Promise<Certificate> {
  return foldLatest(deps.store, streamName.certificate(certificateId), certificateDecider);
}
