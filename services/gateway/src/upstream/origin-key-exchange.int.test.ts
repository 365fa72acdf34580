import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { originTls } from '@vantageedge/shared/domain/gateway-config';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyProxyError } from '../proxy/proxy-request.js';
import { failureOf, getThroughGuardedConnector } from '../testing/guarded-origin-requests.js';
import { compileOriginTls, originTlsErrorCode } from './origin-tls.js';

/**
 * A hostile origin choosing the key exchange. In a TLS 1.2 DHE handshake the server sends the group
 * (any odd number of up to 10,000 bits: the client does not test it for primality) and the client
 * computes two full-length modular exponentiations in it, on the thread every request of the replica
 * waits for: with 8,192 bits about 0.3 s of CPU per handshake, asked of every replica by each health
 * probe and each new pooled connection, and costing the origin one signature. Origin connections offer
 * ECDHE key exchange only (and RSA key transport), as the listeners do.
 */
let ca: TestCa;
let certificate: { chainPem: string; privateKeyPem: string };
const servers: Server[] = [];

/** DHParameter ::= SEQUENCE { prime INTEGER, base INTEGER }, as PEM: an odd number of `bits`, generator 2. */
function hostileDhParameters(bits: number): string {
  const prime = randomBytes(bits / 8);
  prime[0]! |= 0x80;
  prime[prime.length - 1]! |= 1;
  const length = (n: number) =>
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  const integer = (value: Buffer) => {
    const bytes = value[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value;
    return Buffer.concat([Buffer.from([0x02]), length(bytes.length), bytes]);
  };
  const body = Buffer.concat([integer(prime), integer(Buffer.from([2]))]);
  const der = Buffer.concat([Buffer.from([0x30]), length(body.length), body]);
  const lines = der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN DH PARAMETERS-----\n${lines}\n-----END DH PARAMETERS-----\n`;
}

/** A TLS 1.2 origin with these suites (its own order first), answering with the suite negotiated. */
async function origin(ciphers: string): Promise<string> {
  const server = createServer(
    {
      cert: certificate.chainPem,
      key: certificate.privateKeyPem,
      maxVersion: 'TLSv1.2',
      ciphers,
      honorCipherOrder: true,
      dhparam: hostileDhParameters(2048),
    },
    (socket: TLSSocket) => {
      const suite = socket.getCipher().name;
      socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${suite.length}\r\nconnection: close\r\n\r\n${suite}`);
    },
  );
  server.on('tlsClientError', () => {});
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

let onlyDhe = '';
let dheFirst = '';

beforeAll(async () => {
  ca = await createTestCa('Origin Key Exchange CA');
  certificate = await issueTestCertificate(ca, { dnsNames: [], ipAddresses: ['127.0.0.1'], keyType: 'rsa' });
  onlyDhe = await origin('DHE-RSA-AES128-GCM-SHA256');
  dheFirst = await origin('DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256');
});

afterAll(async () => {
  for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** The cipher suite the origin reports for one request over the guarded connector. */
async function suiteOf(url: string, tls: Record<string, unknown>): Promise<string> {
  return (await getThroughGuardedConnector(url, compileOriginTls(originTls.parse(tls)))).body;
}

// Verification off (the connection's own options) and an origin's own CA (a SecureContext of its own).
const settings = {
  'verification off': { verify: false },
  "the origin's own CA": () => ({ ca_certificates: ca.certificatePem }),
};

describe('the key exchange an origin may choose', () => {
  for (const [name, tls] of Object.entries(settings)) {
    const tlsOf = () => (typeof tls === 'function' ? tls() : tls);

    it(`connects over ECDHE to an origin preferring DHE (${name})`, async () => {
      expect(await suiteOf(dheFirst, tlsOf())).toBe('ECDHE-RSA-AES128-GCM-SHA256');
    });

    it(`refuses an origin offering only DHE: 502 origin_tls_error, a connect error (${name})`, async () => {
      const failure = await failureOf(suiteOf(onlyDhe, tlsOf()));
      expect(originTlsErrorCode(failure)).toMatch(/^ERR_SSL_/);
      expect(classifyProxyError(failure)).toMatchObject({
        status: 502,
        code: 'origin_tls_error',
        outcome: { kind: 'connect_error' },
      });
    });
  }
});
