import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { resumesAcrossServerNames } from '../tls/cross-name-resumption.js';

let answer: Promise<boolean> | undefined;

/**
 * Whether the gateway's TLS listener resumes sessions on this runtime: it resumes none where the
 * runtime would resume one under another server name (see cross-name-resumption.ts). Tests of how
 * resumed sessions are judged have nothing to judge on such a runtime.
 */
export function listenerResumesSessions(): Promise<boolean> {
  answer ??= selfSignedTestCertificate({ dnsNames: ['localhost'] }).then(
    async (certificate) =>
      !(await resumesAcrossServerNames({
        certificatePem: certificate.chainPem,
        privateKeyPem: certificate.privateKeyPem,
      })),
  );
  return answer;
}
