import { randomBytes, randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureVersion, TLSSocket } from 'node:tls';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
  type TestCa,
} from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot, snapshotCertificateOf } from '../testing/snapshots.js';

/**
 * TLS sessions to origins are never resumed across TLS identities. A resumed session carries the
 * authentication of the handshake that made it — the client certificate the origin verified, the trust
 * the gateway verified the origin's certificate with — so a session one tenant's connection made with
 * its client certificate, resumed by another tenant's connection to the same host:port, would have the
 * origin take the other tenant for the first; and a session made under an origin's old TLS settings
 * (verification off, another CA, another client certificate), resumed after they changed, would skip
 * what the new settings check. The origin answers `Connection: close`, so every request is a new
 * connection that offers whatever session the gateway kept.
 */
const KEK = randomBytes(32).toString('base64');
const ring = keyRing(KEK);

interface SeenConnection {
  readonly path: string;
  readonly reused: boolean;
  readonly authorized: boolean;
  /** The CN of the client certificate the origin holds for the connection (none: undefined). */
  readonly clientSubject: string | undefined;
}

interface MutualOrigin {
  readonly url: string;
  readonly seen: SeenConnection[];
  close(): Promise<void>;
}

let serverCa: TestCa;
let clientCa: TestCa;
let unrelatedCa: TestCa;
let gateway: TestGateway;
const origins: MutualOrigin[] = [];

/** An https origin that asks for a client certificate of its client CA and serves without one too. */
async function mutualOrigin(maxVersion: SecureVersion): Promise<MutualOrigin> {
  const serving = await issueTestCertificate(serverCa, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
  const seen: SeenConnection[] = [];
  const server = https.createServer(
    {
      cert: serving.chainPem,
      key: serving.privateKeyPem,
      ca: clientCa.certificatePem,
      requestCert: true,
      rejectUnauthorized: false,
      maxVersion,
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const subject = socket.getPeerCertificate().subject?.CN;
      seen.push({
        path: req.url ?? '',
        reused: socket.isSessionReused(),
        authorized: socket.authorized,
        clientSubject: subject === undefined ? undefined : String(subject),
      });
      res.writeHead(200, { connection: 'close' }).end('served');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const origin = {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  origins.push(origin);
  return origin;
}

async function clientCertificate(commonName: string) {
  return issueTestCertificate(clientCa, {
    dnsNames: [],
    commonName,
    extendedKeyUsages: [CLIENT_AUTH_USAGE],
  });
}

/** Applies version `version` of a tenant whose one origin (`tls`) serves every path; its host. */
function applyTenant(
  tenant: { id: string; subdomain: string; originUrl: string },
  version: number,
  tls: Record<string, unknown>,
  certificates: Parameters<typeof snapshotCertificateOf>[2][] = [],
): string {
  const snapshotCertificates = certificates.map((certificate) =>
    snapshotCertificateOf(ring, tenant.id, certificate, []),
  );
  const certificateId = snapshotCertificates[0]?.id;
  gateway.store.apply(
    buildSnapshot({
      tenantId: tenant.id,
      version,
      subdomain: tenant.subdomain,
      origins: [
        {
          id: tenant.id,
          targets: [tenant.originUrl],
          tls: { ...tls, ...(certificateId === undefined ? {} : { client_certificate_id: certificateId }) },
        },
      ],
      routes: [{ origin_id: tenant.id, path_pattern: '/*' }],
      certificates: snapshotCertificates,
    }),
  );
  return `${tenant.subdomain}.localhost`;
}

function newTenant(name: string, originUrl: string) {
  const id = randomUUID();
  return { id, subdomain: `${name}-${id.slice(0, 8)}`, originUrl };
}

/** Sends a request for a fresh path; its status and how the origin saw its connection (if it did). */
async function request(host: string) {
  const path = `/${randomUUID()}`;
  const response = await send(gateway, host, path);
  return { status: response.status, body: response.text, origin: path };
}

beforeAll(async () => {
  [serverCa, clientCa, unrelatedCa] = await Promise.all([
    createTestCa('Origin Server CA'),
    createTestCa('Origin Client CA'),
    createTestCa('Unrelated CA'),
  ]);
  gateway = await startTestGateway({ CERTIFICATE_ENCRYPTION_KEY: KEK });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all(origins.map((origin) => origin.close()));
});

const seenAt = (origin: MutualOrigin, path: string) => origin.seen.find((entry) => entry.path === path);

describe.each(['TLSv1.3', 'TLSv1.2'] as const)('TLS sessions to an origin (%s)', (maxVersion) => {
  it('a tenant never resumes the session another tenant authenticated with its client certificate', async () => {
    const origin = await mutualOrigin(maxVersion);
    const trust = { ca_certificates: serverCa.certificatePem };
    const owner = applyTenant(newTenant('owner', origin.url), 1, trust, [await clientCertificate('owner')]);
    const neighbour = applyTenant(newTenant('neighbour', origin.url), 1, trust);
    const other = applyTenant(newTenant('other', origin.url), 1, trust, [await clientCertificate('other')]);

    const first = await request(owner);
    const again = await request(owner);
    expect([first.status, again.status]).toEqual([200, 200]);
    // The owner's own sessions are resumed: there is a session a neighbour could be handed.
    expect(seenAt(origin, again.origin)).toEqual({
      path: again.origin,
      reused: true,
      authorized: true,
      clientSubject: 'owner',
    });

    for (let round = 0; round < 2; round++) {
      const fromNeighbour = await request(neighbour);
      expect(fromNeighbour.status).toBe(200);
      const seen = seenAt(origin, fromNeighbour.origin);
      // The neighbour presents no certificate, nor resumes the owner's session (which carries the
      // owner's). Its own sessions, made without one, it may resume: node 20 counts a TLS 1.3 session
      // resumed without a peer certificate as authorized, so `authorized` speaks of full handshakes only.
      expect({
        clientSubject: seen?.clientSubject,
        authorizedWithoutCertificate: seen?.authorized === true && seen.reused === false,
      }).toEqual({ clientSubject: undefined, authorizedWithoutCertificate: false });
      const fromOther = await request(other);
      expect(fromOther.status).toBe(200);
      expect(seenAt(origin, fromOther.origin)).toMatchObject({ authorized: true, clientSubject: 'other' });
    }
  });

  it('a session made with a client certificate is not resumed once the origin names none, or another', async () => {
    const origin = await mutualOrigin(maxVersion);
    const trust = { ca_certificates: serverCa.certificatePem };
    const tenant = newTenant('changing', origin.url);
    const host = applyTenant(tenant, 1, trust, [await clientCertificate('first')]);
    await request(host);
    const resumed = await request(host);
    expect(seenAt(origin, resumed.origin)).toMatchObject({ reused: true, clientSubject: 'first' });

    applyTenant(tenant, 2, trust);
    const withoutCertificate = await request(host);
    expect(withoutCertificate.status).toBe(200);
    expect(seenAt(origin, withoutCertificate.origin)).toMatchObject({
      authorized: false,
      clientSubject: undefined,
    });

    applyTenant(tenant, 3, trust, [await clientCertificate('second')]);
    const withAnother = await request(host);
    expect(withAnother.status).toBe(200);
    expect(seenAt(origin, withAnother.origin)).toMatchObject({ authorized: true, clientSubject: 'second' });
  });

  it('a session verified under the old trust is not resumed once verification is turned on or the CA changed', async () => {
    const origin = await mutualOrigin(maxVersion);
    const unverified = newTenant('unverified', origin.url);
    const unverifiedHost = applyTenant(unverified, 1, { verify: false });
    await request(unverifiedHost);
    expect(seenAt(origin, (await request(unverifiedHost)).origin)).toMatchObject({ reused: true });
    // The replica does not trust the origin's CA: with verification on, nothing reaches the origin.
    applyTenant(unverified, 2, { verify: true });
    const verified = await request(unverifiedHost);
    expect(verified.status).toBe(502);
    expect(JSON.parse(verified.body).error.code).toBe('origin_tls_error');
    expect(seenAt(origin, verified.origin)).toBeUndefined();

    const pinned = newTenant('pinned', origin.url);
    const pinnedHost = applyTenant(pinned, 1, { ca_certificates: serverCa.certificatePem });
    await request(pinnedHost);
    expect(seenAt(origin, (await request(pinnedHost)).origin)).toMatchObject({ reused: true });
    applyTenant(pinned, 2, { ca_certificates: unrelatedCa.certificatePem });
    const repinned = await request(pinnedHost);
    expect(repinned.status).toBe(502);
    expect(JSON.parse(repinned.body).error.code).toBe('origin_tls_error');
    expect(seenAt(origin, repinned.origin)).toBeUndefined();
  });
});
