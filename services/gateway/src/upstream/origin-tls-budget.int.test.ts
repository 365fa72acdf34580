import { constants, randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { startStalledConnectTarget } from '@vantageedge/shared/testing/stalled-connect-target';
import {
  createTestCa,
  issueTestCertificate,
  KeyUsageFlags,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  type TestGateway,
} from '../testing/gateway-harness.js';
import { decoyedCertificateChain, hostileCertificateChain } from '../testing/hostile-certificate-chains.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * A tenant's origin whose certificate chain is as dear to check as OpenSSL lets it be (40 CA certificates
 * of RSA-3072 keys with exponents as long as their moduli: ≈ 0.5 s of the replica's thread per handshake,
 * paid before node lets anyone look at the chain, `verify: false` included) must not let that tenant
 * spend the replica's thread at its origins' pace: once its handshakes have spent their budget its new
 * https connections are refused (503 origin_tls_budget, health probes skipped), and another tenant's
 * requests are served as before. Both origins close every connection after answering, so each request
 * asks a new handshake.
 */
interface CountingOrigin {
  readonly url: string;
  /** TLS handshakes the origin was asked (ClientHellos). */
  handshakes: number;
  close(): Promise<void>;
}

const origins: CountingOrigin[] = [];
let gateway: TestGateway;
let benign: CountingOrigin;
let hostile: CountingOrigin;
let decoyed: CountingOrigin;
let unsigning: CountingOrigin;
let fronted: CountingOrigin;
let crossSigned: CountingOrigin;
let crossSignedRoot = '';
let hostileCas: string[] = [];
let hostileRoot = '';
let benignCa = '';

/** An https origin that answers `answer` and closes; it resumes no session (a hostile one would not). */
async function countingOrigin(cert: string, key: string, answer: string): Promise<CountingOrigin> {
  const origin = {
    url: '',
    handshakes: 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = https.createServer(
    {
      cert,
      key,
      secureOptions: constants.SSL_OP_NO_TICKET,
      // Asked once per ClientHello: counts the handshakes begun (a TCP connection alone is not one).
      ALPNCallback: () => {
        origin.handshakes++;
        return 'http/1.1';
      },
    },
    (_req, res) => {
      res.writeHead(200, { connection: 'close' }).end(answer);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  origin.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  origins.push(origin);
  return origin;
}

function tenant(
  name: string,
  originUrl: string,
  tls: Record<string, unknown>,
  healthCheck?: Record<string, unknown>,
) {
  const id = randomUUID();
  const subdomain = `${name}-${id.slice(0, 8)}`;
  gateway.store.apply(
    buildSnapshot({
      tenantId: id,
      subdomain,
      origins: [
        {
          id,
          targets: [originUrl],
          tls,
          ...(healthCheck === undefined ? {} : { health_check: healthCheck }),
        },
      ],
      routes: [{ origin_id: id, path_pattern: '/*' }],
    }),
  );
  return { id, host: `${subdomain}.localhost` };
}

/** The `error.code` of a gateway's refusal; undefined for an origin's answer. */
function errorCode(response: GatewayResponse): string | undefined {
  if (!String(response.headers['content-type']).includes('json')) return undefined;
  return (response.json().error as { code?: string } | undefined)?.code;
}

/** Served once by `origin`, then refused by the tenant's spent budget: the origin saw one handshake. */
async function expectServedOnceThenRefused(host: string, origin: CountingOrigin, body: string) {
  const first = await send(gateway, host, '/');
  expect({ status: first.status, body: first.text }).toEqual({ status: 200, body });
  const again = await send(gateway, host, '/');
  expect({ status: again.status, code: errorCode(again) }).toEqual({
    status: 503,
    code: 'origin_tls_budget',
  });
  expect(origin.handshakes).toBe(1);
}

async function counted(name: string, labels: Record<string, string>): Promise<number> {
  const metric = gateway.registry.getSingleMetric(name);
  const values = (await metric?.get())?.values ?? [];
  return values
    .filter((value) => Object.entries(labels).every(([label, wanted]) => value.labels[label] === wanted))
    .reduce((sum, value) => sum + value.value, 0);
}

beforeAll(async () => {
  const chain = await hostileCertificateChain(40);
  hostileRoot = chain.chainPem.split(/(?=-----BEGIN CERTIFICATE-----)/).at(-1)!;
  hostile = await countingOrigin(chain.chainPem, chain.privateKeyPem, 'hostile');
  const decoy = await decoyedCertificateChain(40);
  decoyed = await countingOrigin(decoy.chainPem, decoy.privateKeyPem, 'decoyed');
  const unsigned = await hostileCertificateChain(40, KeyUsageFlags.digitalSignature);
  unsigning = await countingOrigin(unsigned.chainPem, unsigned.privateKeyPem, 'unsigning');
  // Leaf and a valid cheap decoy of its issuer only: the costly CAs are the tenant's trust store.
  const front = await decoyedCertificateChain(40, true);
  const [frontLeaf, frontDecoy] = front.chainPem.split(/(?=-----BEGIN CERTIFICATE-----)/);
  fronted = await countingOrigin(`${frontLeaf}${frontDecoy}`, front.privateKeyPem, 'fronted');
  hostileCas = chain.chainPem.split(/(?=-----BEGIN CERTIFICATE-----)/).slice(1);
  const ca = await createTestCa('Benign Origin CA');
  const serving = await issueTestCertificate(ca, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
  benign = await countingOrigin(serving.chainPem, serving.privateKeyPem, 'benign');
  benignCa = ca.certificatePem;
  // As ordinary servers still send it: leaf, intermediate, and the root cross-signed by an older root,
  // expired (Let's Encrypt's ISRG Root X1 by DST Root CA X3). Node's chain ends with the expired
  // cross-sign; OpenSSL takes the root from the trust store.
  const root = await createTestCa('Cross Root');
  const intermediate = await createTestCa('Cross Intermediate', { issuer: root });
  const oldRoot = await createTestCa('Old Root');
  const expiredCross = await createTestCa('Cross Root', {
    keyPair: root,
    issuer: oldRoot,
    notBefore: new Date(Date.now() - 800 * 86_400_000),
    notAfter: new Date(Date.now() - 400 * 86_400_000),
  });
  const crossLeaf = await issueTestCertificate(intermediate, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
  crossSigned = await countingOrigin(
    `${crossLeaf.certificatePem}\n${intermediate.certificatePem}\n${expiredCross.certificatePem}`,
    crossLeaf.privateKeyPem,
    'cross-signed',
  );
  crossSignedRoot = root.certificatePem;
  // A budget a single hostile handshake (≈ 560 ms estimated) overdraws for minutes; ordinary handshakes
  // (≈ 0.5 ms) fit it many times over.
  gateway = await startTestGateway({
    GATEWAY_ORIGIN_TLS_CHECK_MS_PER_SECOND: '1',
    GATEWAY_ORIGIN_TLS_CHECK_BURST_MS: '100',
  });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await Promise.all(origins.map((origin) => origin.close()));
});

const benignTls = () => ({ ca_certificates: benignCa });

describe('the handshake budget of a tenant whose origin sends a costly certificate chain', () => {
  it('refuses its new TLS connections once spent, and serves another tenant as before', async () => {
    const attacker = tenant('hostile', hostile.url, { verify: false });
    const neighbour = tenant('neighbour', benign.url, benignTls());

    const first = await send(gateway, attacker.host, '/');
    expect({ status: first.status, body: first.text }).toEqual({ status: 200, body: 'hostile' });

    const later = [];
    for (let i = 0; i < 5; i++) {
      const response = await send(gateway, attacker.host, '/');
      later.push({
        status: response.status,
        code: errorCode(response),
        retryAfter: Number(response.headers['retry-after']) >= 1,
      });
      const served = await send(gateway, neighbour.host, '/');
      expect({ status: served.status, body: served.text }).toEqual({ status: 200, body: 'benign' });
    }
    expect(later).toEqual(Array(5).fill({ status: 503, code: 'origin_tls_budget', retryAfter: true }));
    // One costly handshake, then none: the origin never saw the refused connections.
    expect(hostile.handshakes).toBe(1);
    expect(benign.handshakes).toBeGreaterThanOrEqual(5);
    expect(await counted('vantageedge_upstream_tls_budget_refusals_total', { tenant: attacker.id })).toBe(5);
    expect(await counted('vantageedge_upstream_tls_budget_refusals_total', { tenant: neighbour.id })).toBe(0);
    expect(
      await counted('vantageedge_upstream_tls_handshake_check_ms_total', {
        tenant: attacker.id,
        source: 'request',
      }),
    ).toBeGreaterThan(100);
    // An ordinary chain (P-256) is charged a fraction of a millisecond a handshake, all it sent counted.
    const neighbourCharged = await counted('vantageedge_upstream_tls_handshake_check_ms_total', {
      tenant: neighbour.id,
    });
    expect(neighbourCharged / benign.handshakes).toBeLessThan(1);
  });

  it('charges an ordinary chain ending with an expired cross-signed root as an ordinary chain: its tenant is served on', async () => {
    const owner = tenant('cross', crossSigned.url, { ca_certificates: crossSignedRoot });

    const answers = [];
    for (let i = 0; i < 3; i++) {
      const response = await send(gateway, owner.host, '/');
      answers.push({ status: response.status, body: response.text });
    }
    expect(answers).toEqual(Array(3).fill({ status: 200, body: 'cross-signed' }));
    const charged = await counted('vantageedge_upstream_tls_handshake_check_ms_total', { tenant: owner.id });
    expect(charged / crossSigned.handshakes).toBeLessThan(2);
  });

  it('charges a chain node reports only up to an expired decoy of an issuer as dear as the chain OpenSSL checks', async () => {
    const attacker = tenant('decoyed', decoyed.url, { verify: false });

    await expectServedOnceThenRefused(attacker.host, decoyed, 'decoyed');
  });

  it('charges a chain of CAs whose key usage forbids signing certificates (node reports none of them, OpenSSL checks them all)', async () => {
    const attacker = tenant('unsigning', unsigning.url, { verify: false });

    await expectServedOnceThenRefused(attacker.host, unsigning, 'unsigning');
  });

  it('charges the costly CAs of the tenant’s own trust store, which OpenSSL looks in first, however cheap the chain the origin sends', async () => {
    const attacker = tenant('fronted', fronted.url, {
      verify: false,
      ca_certificates: hostileCas.slice(0, 10).join(''),
    });

    await expectServedOnceThenRefused(attacker.host, fronted, 'fronted');
  });

  it('lets a burst of new connections to an origin of unknown cost run only a few handshakes before the first is charged', async () => {
    const attacker = tenant('burst', hostile.url, { verify: false });
    const before = hostile.handshakes;

    const answers = await Promise.all(Array.from({ length: 20 }, () => send(gateway, attacker.host, '/')));

    const served = answers.filter((answer) => answer.status === 200 && answer.text === 'hostile').length;
    const refused = answers.filter((answer) => errorCode(answer) === 'origin_tls_budget').length;
    // At most GATEWAY_ORIGIN_TLS_HANDSHAKES_PER_TENANT (4) handshakes at once, each one request served;
    // the other connections waited their turn and were refused once the first were charged.
    const handshakes = hostile.handshakes - before;
    expect({ served, refused, atMostFour: handshakes <= 4 }).toEqual({
      served: handshakes,
      refused: 20 - handshakes,
      atMostFour: true,
    });
  });

  it('holds no turn while a connection is still being made: a target that never accepts keeps no other origin waiting', async () => {
    const stalled = await startStalledConnectTarget();
    try {
      const [tenantId, stalledId, benignId] = [randomUUID(), randomUUID(), randomUUID()];
      const subdomain = `stalled-${tenantId.slice(0, 8)}`;
      gateway.store.apply(
        buildSnapshot({
          tenantId,
          subdomain,
          origins: [
            { id: stalledId, targets: [stalled.url.replace('http:', 'https:')], timeout_seconds: 5 },
            { id: benignId, targets: [benign.url], tls: benignTls() },
          ],
          routes: [
            { origin_id: stalledId, path_pattern: '/stalled/*' },
            { origin_id: benignId, path_pattern: '/*' },
          ],
        }),
      );
      const host = `${subdomain}.localhost`;
      let hangingAnswered = 0;
      const hanging = Array.from({ length: 8 }, () =>
        send(gateway, host, '/stalled/x').finally(() => hangingAnswered++),
      );
      // More connects hanging than handshakes a tenant may run at once (4): the benign origin's are not
      // held behind them.
      await delay(300);
      const served = await send(gateway, host, '/benign');
      expect({ status: served.status, body: served.text, hangingAnswered }).toEqual({
        status: 200,
        body: 'benign',
        hangingAnswered: 0,
      });
      expect((await Promise.all(hanging)).map((answer) => answer.status)).toEqual(Array(8).fill(504));
    } finally {
      await stalled.close();
    }
  });

  it('charges a chain it refuses (verify_depth) as one it accepts', async () => {
    const attacker = tenant('deep', hostile.url, { ca_certificates: hostileRoot, verify_depth: 10 });
    const before = hostile.handshakes;

    const refused = await send(gateway, attacker.host, '/');
    expect({ status: refused.status, code: errorCode(refused) }).toEqual({
      status: 502,
      code: 'origin_tls_error',
    });
    const again = await send(gateway, attacker.host, '/');
    expect({ status: again.status, code: errorCode(again) }).toEqual({
      status: 503,
      code: 'origin_tls_budget',
    });
    expect(hostile.handshakes - before).toBe(1);
  });

  it('charges WebSocket upgrades to the same budget and refuses them once spent', async () => {
    const attacker = tenant('upgrades', hostile.url, { verify: false });
    const before = hostile.handshakes;

    await sendUpgrade(gateway, attacker.host, '/');
    const refused = await sendUpgrade(gateway, attacker.host, '/');
    expect({ status: refused.status, code: JSON.parse(refused.text).error?.code }).toEqual({
      status: 503,
      code: 'origin_tls_budget',
    });
    expect(hostile.handshakes - before).toBe(1);
    expect(
      await counted('vantageedge_upstream_tls_handshake_check_ms_total', {
        tenant: attacker.id,
        source: 'websocket',
      }),
    ).toBeGreaterThan(100);
  });

  it('skips its health probes once spent, counted, and leaves its target as it was', async () => {
    const attacker = tenant(
      'probed',
      hostile.url,
      { verify: false },
      { active: { enabled: true, interval_seconds: 1, timeout_seconds: 5 } },
    );
    const before = hostile.handshakes;
    const skipped = () =>
      counted('vantageedge_upstream_tls_budget_refusals_total', {
        tenant: attacker.id,
        source: 'health_check',
      });
    for (const deadline = Date.now() + 15_000; (await skipped()) < 2; ) {
      if (Date.now() > deadline) throw new Error('timed out waiting for two skipped probes');
      await delay(100);
    }
    expect(hostile.handshakes - before).toBe(1);
    // Not ejected: the request is refused by the budget, not for want of a healthy target.
    const response = await send(gateway, attacker.host, '/');
    expect({ status: response.status, code: (response.json().error as { code?: string }).code }).toEqual({
      status: 503,
      code: 'origin_tls_budget',
    });
  });
});

describe('a connection whose handshake waits for its tenant’s turn', () => {
  it('is made as it was without one: SNI for a name and none for an IP address, ALPN http/1.1, the session resumed and charged nothing', async () => {
    const ca = await createTestCa('Handshake Shape CA');
    const serving = await issueTestCertificate(ca, {
      dnsNames: ['origin.internal'],
      ipAddresses: ['127.0.0.1'],
    });
    const seen: { servername: string | false | null; alpn: string | false | null; reused: boolean }[] = [];
    const server = https.createServer(
      { cert: serving.chainPem, key: serving.privateKeyPem, ALPNProtocols: ['http/1.1'] },
      (request, response) => {
        const socket = request.socket as TLSSocket;
        seen.push({
          servername: socket.servername,
          alpn: socket.alpnProtocol,
          reused: socket.isSessionReused(),
        });
        response.writeHead(200, { connection: 'close' }).end('shaped');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    origins.push({
      url: '',
      handshakes: 0,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    });
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const named = tenant('named', url, {
      ca_certificates: ca.certificatePem,
      server_name: 'origin.internal',
    });
    const addressed = tenant('addressed', url, { ca_certificates: ca.certificatePem });
    const charged = () =>
      counted('vantageedge_upstream_tls_handshake_check_ms_total', { tenant: named.id, source: 'request' });

    const statuses = [(await send(gateway, named.host, '/')).status];
    const first = await charged();
    statuses.push((await send(gateway, named.host, '/')).status);
    const second = await charged();
    statuses.push((await send(gateway, addressed.host, '/')).status);

    expect(statuses).toEqual([200, 200, 200]);
    expect(seen).toEqual([
      { servername: 'origin.internal', alpn: 'http/1.1', reused: false },
      { servername: 'origin.internal', alpn: 'http/1.1', reused: true },
      { servername: false, alpn: 'http/1.1', reused: false },
    ]);
    expect({ firstCharged: first > 0, secondCharged: second - first }).toEqual({
      firstCharged: true,
      secondCharged: 0,
    });
  });
});
