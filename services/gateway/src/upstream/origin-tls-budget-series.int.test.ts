import { constants, randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression: the origin TLS handshake budget's series (`vantageedge_upstream_tls_handshake_check_ms_total`,
 * `vantageedge_upstream_tls_budget_refusals_total`, labelled by tenant) stayed in every replica's /metrics
 * after their tenant was removed, so tenants coming and going with https origins grew /metrics for good.
 */
describe('the origin TLS budget series of a removed tenant', () => {
  let gateway: TestGateway;
  let server: https.Server;
  let originUrl = '';
  let ca = '';

  beforeAll(async () => {
    const authority = await createTestCa('Budget Series CA');
    const serving = await issueTestCertificate(authority, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
    ca = authority.certificatePem;
    // Every answer closes its connection and no session is resumed: each request asks a new handshake,
    // charged to the budget.
    server = https.createServer(
      { cert: serving.chainPem, key: serving.privateKeyPem, secureOptions: constants.SSL_OP_NO_TICKET },
      (_req, res) => {
        res.writeHead(200, { connection: 'close' }).end('ok');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    originUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A budget an ordinary handshake or two spend: the tenant soon has refusals counted too.
    gateway = await startTestGateway({
      GATEWAY_ORIGIN_TLS_CHECK_MS_PER_SECOND: '1',
      GATEWAY_ORIGIN_TLS_CHECK_BURST_MS: '1',
    });
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
  });

  const tenantLines = async (tenantId: string): Promise<string[]> => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    return text.split('\n').filter((line) => line.includes(`tenant="${tenantId}"`));
  };

  it('leaves /metrics with the tenant, and stays while the tenant is only replaced', async () => {
    const tenantId = randomUUID();
    const snapshot = (version: number) =>
      buildSnapshot({
        tenantId,
        version,
        subdomain: `tls-series-${tenantId.slice(0, 8)}`,
        origins: [{ id: tenantId, targets: [originUrl], tls: { ca_certificates: ca } }],
        routes: [{ origin_id: tenantId, path_pattern: '/*' }],
      });
    gateway.store.apply(snapshot(1));
    const host = `tls-series-${tenantId.slice(0, 8)}.localhost`;
    const statuses: number[] = [];
    for (let i = 0; i < 10 && !statuses.includes(503); i++)
      statuses.push((await send(gateway, host, '/')).status);
    expect(statuses[0]).toBe(200);
    expect(statuses).toContain(503);

    const budgetFamilies = (lines: string[]) =>
      new Set(lines.map((line) => line.slice(0, line.indexOf('{'))).filter((name) => name.includes('_tls_')));
    expect(budgetFamilies(await tenantLines(tenantId))).toEqual(
      new Set([
        'vantageedge_upstream_tls_handshake_check_ms_total',
        'vantageedge_upstream_tls_budget_refusals_total',
      ]),
    );

    gateway.store.apply(snapshot(2));
    expect(budgetFamilies(await tenantLines(tenantId)).size).toBe(2);

    gateway.store.remove(tenantId);
    expect(await tenantLines(tenantId)).toEqual([]);
  });
});
