import type { AddressInfo } from 'node:net';
import { connect, createServer, type SecureVersion } from 'node:tls';
import { secureContextFor, TLS_POLICY } from './tls-policy.js';

/** A certificate chain and its key (the default certificate's). */
export interface ProbeCertificate {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

const MADE_FOR = 'made-for.invalid';
const OFFERED_FOR = 'offered-for.invalid';
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Whether this runtime's TLS server resumes a session offered under another server name than the one
 * it was made for, or under none. SNI picks the certificate in a full handshake only: a resumed
 * session skips SNICallback, and the listener judges its requests by the name it was resumed for, so
 * a session one tenant's certificate made, resumed under another tenant's name, would have that
 * certificate vouch for the other tenant. OpenSSL itself does not tie a session to its name (node 20's
 * OpenSSL 3.0 resumes it under any name, and then reports no server name for a TLS 1.2 session); node
 * 24 refuses it, client and server. Probed once on loopback, as the listener serves (SNI choosing a
 * context of its own), with this runtime's client, for TLS 1.3 and 1.2. A probe that fails answers
 * true: resumption is then turned off rather than trusted.
 */
export async function resumesAcrossServerNames(certificate: ProbeCertificate): Promise<boolean> {
  const context = secureContextFor(certificate.certificatePem, certificate.privateKeyPem);
  const server = createServer(
    {
      ...TLS_POLICY,
      cert: certificate.certificatePem,
      key: certificate.privateKeyPem,
      SNICallback: (_servername, callback) => callback(null, context),
    },
    (socket) => socket.end('probe'),
  );
  server.on('tlsClientError', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const made = await handshake(port, MADE_FOR, undefined, maxVersion);
      if (made.session === undefined) continue;
      for (const servername of [OFFERED_FOR, undefined]) {
        if ((await handshake(port, servername, made.session, maxVersion)).reused) return true;
      }
    }
    return false;
  } catch {
    return true;
  } finally {
    server.close();
  }
}

function handshake(
  port: number,
  servername: string | undefined,
  session: Buffer | undefined,
  maxVersion: SecureVersion,
): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let issued: Buffer | undefined;
    let reused = false;
    const socket = connect({
      host: '127.0.0.1',
      port,
      // Node sends no SNI for an empty name.
      servername: servername ?? '',
      rejectUnauthorized: false,
      maxVersion,
      ...(session === undefined ? {} : { session }),
    });
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy(new Error('TLS resumption probe timed out')));
    // TLS 1.3 sessions arrive after the handshake: the probe server closes once they are sent.
    socket.on('session', (received: Buffer) => {
      issued = received;
    });
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
    });
    socket.on('data', () => {});
    socket.once('close', () => resolve({ reused, session: issued }));
    socket.once('error', reject);
  });
}
