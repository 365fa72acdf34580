import { https1Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeDefaultCertificateFiles } from '../testing/default-certificate-files.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { resumesAcrossServerNames } from './cross-name-resumption.js';

/**
 * A runtime whose TLS server resumes a session under another server name (node 20's OpenSSL 3.0 does)
 * would have a session one tenant's certificate made judged by another tenant's name: the listener
 * then resumes no session at all. Node 24 refuses such a resumption itself, so the probe is stood in
 * for here by one that finds the runtime resuming across names.
 */
vi.mock('./cross-name-resumption.js', () => ({ resumesAcrossServerNames: vi.fn(async () => true) }));

let files: Awaited<ReturnType<typeof writeDefaultCertificateFiles>>;
let gateway: TestGateway;
let tlsPort: number;

beforeAll(async () => {
  files = await writeDefaultCertificateFiles('cross-name-resumption');
  gateway = await startTestGateway(files.tlsListenerEnv);
  tlsPort = gateway.gateway.tlsPort as number;
});

afterAll(async () => {
  await gateway?.close();
  await files?.remove();
});

describe('on a runtime that resumes a TLS session under another server name', () => {
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`the listener resumes no session, not even for the name it was made for (${maxVersion})`, async () => {
      expect(resumesAcrossServerNames).toHaveBeenCalled();
      const first = await https1Request(tlsPort, 'made.localhost', '/first', { maxVersion });
      expect(first.session).toBeDefined();
      for (const servername of ['made.localhost', 'other.localhost', null]) {
        const again = await https1Request(tlsPort, 'made.localhost', '/again', {
          maxVersion,
          servername,
          session: first.session,
        });
        expect(again.sessionReused, `SNI ${servername}`).toBe(false);
      }
    });
  }
});
