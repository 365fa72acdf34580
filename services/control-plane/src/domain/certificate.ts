import type { CertificateState } from '@vantageedge/shared/domain/events';
import type { SealedPrivateKey } from '@vantageedge/shared/tls/private-key-envelope';
import {
  created,
  type Decider,
  type Decision,
  DomainError,
  deleted,
  type Lifecycle,
  live,
} from './decision.js';

/**
 * A tenant's TLS certificate (stream `certificate-<id>`): uploaded once with its checked chain and
 * sealed key, its key sealed again when the key-encryption key rotates, deleted. A certificate is never
 * edited: a renewed certificate is a new upload, then the old one is deleted.
 */
export type Certificate = Lifecycle<CertificateState>;

export type CertificateCommand =
  | { type: 'UploadCertificate'; certificate: CertificateState }
  | { type: 'ResealCertificateKey'; privateKey: SealedPrivateKey }
  | { type: 'DeleteCertificate' };

function decide(command: CertificateCommand, state: Certificate): Decision {
  switch (command.type) {
    case 'UploadCertificate':
      if (state.status !== 'absent') throw new DomainError('conflict', 'certificate already exists');
      return { events: [{ type: 'CertificateUploaded', data: command.certificate }] };
    case 'ResealCertificateKey': {
      const certificate = live(state, 'certificate').data;
      if (certificate.private_key.kek_id === command.privateKey.kek_id) return { events: [] };
      return {
        events: [
          {
            type: 'CertificateKeyResealed',
            data: {
              certificate_id: certificate.certificate_id,
              tenant_id: certificate.tenant_id,
              private_key: command.privateKey,
            },
          },
        ],
      };
    }
    case 'DeleteCertificate': {
      const certificate = live(state, 'certificate').data;
      return {
        events: [
          {
            type: 'CertificateDeleted',
            data: { certificate_id: certificate.certificate_id, tenant_id: certificate.tenant_id },
          },
        ],
      };
    }
  }
}

export const certificateDecider: Decider<Certificate, CertificateCommand> = {
  initialState: () => ({ status: 'absent' }),
  evolve(state, event) {
    const at = event.metadata.occurred_at;
    switch (event.type) {
      case 'CertificateUploaded':
        return created(event.data, at);
      case 'CertificateKeyResealed':
        if (state.status === 'absent') return state;
        return { ...state, data: { ...state.data, private_key: event.data.private_key }, updated_at: at };
      case 'CertificateDeleted':
        return deleted(state, at);
      default:
        return state;
    }
  },
  decide,
};
