import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, createServer, type Server } from 'node:tls';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import { CertificateSelector } from './certificate-selector.js';
import { DefaultCertificate } from './default-certificate.js';
import type { TenantCertificates } from './tenant-certificates.js';

const closing: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close().catch(() => undefined);
});

/** A TLS listener whose SNI waits for a config that never loads; `lookups`: how often it looked again. */
async function loadingListener(): Promise<{ server: Server; port: number; lookups: () => number }> {
  const files: DefaultCertificateFiles = await writeDefaultCertificateFiles('selector');
  closing.push(() => files.remove());
  const defaultCertificate = await DefaultCertificate.load({
    certFile: files.tlsListenerEnv.GATEWAY_TLS_CERT_FILE,
    keyFile: files.tlsListenerEnv.GATEWAY_TLS_KEY_FILE,
    reloadMs: 0,
    logger: createLogger({ service: 'certificate-selector-test', level: 'error' }),
  });
  let lookups = 0;
  const tenants: TenantResolver = {
    resolveHost: () => {
      lookups += 1;
      return undefined;
    },
  };
  const selector = new CertificateSelector(
    tenants,
    { certificateFor: () => undefined } as unknown as TenantCertificates,
    defaultCertificate,
    undefined,
    { configLoaded: () => false, waitMs: 5_000 },
  );
  const server = createServer({
    cert: defaultCertificate.current.certificatePem,
    key: defaultCertificate.current.privateKeyPem,
    SNICallback: selector.sniCallback,
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closing.push(() => new Promise((resolve) => server.close(resolve)));
  return { server, port: (server.address() as AddressInfo).port, lookups: () => lookups };
}

describe('a TLS handshake waiting for its custom domain’s certificate while the config loads', () => {
  // Regression test: a handshake kept looking for its name's certificate every 100 ms for the whole
  // wait after its client had gone: a client opening handshakes for made-up names and closing them at
  // once left the replica that work (and a timer each) for 5 s per handshake, past every connection limit.
  it('stops waiting when its client disconnects', async () => {
    const { server, port, lookups } = await loadingListener();
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect({
      port,
      host: '127.0.0.1',
      servername: 'api.made-up.example',
      rejectUnauthorized: false,
    });
    client.on('error', () => {});
    const [serverSide] = await accepted;
    await eventually('waiting for the certificate', () => lookups() >= 2);

    client.destroy();
    if (!serverSide.destroyed) await once(serverSide, 'close');
    // A look already scheduled may still run.
    await sleep(150);
    const afterClose = lookups();
    await sleep(500);
    expect(lookups()).toBe(afterClose);
  });
});
