import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertControlPlaneSettings, controlPlaneSettings } from '@vantageedge/control-plane/settings';
import { gatewaySettings, parseGatewaySettings } from '@vantageedge/gateway/settings';
import { loadSnapshotSigner, loadSnapshotVerifier } from '@vantageedge/shared/snapshot-bus/record-signature';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { composeDevEnvFile, writeSnapshotSigningKeys } from './compose-env.js';
import { DEV_CLERK_ISSUER } from './dev-keys.js';

const PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
  type: 'spki',
  format: 'pem',
}) as string;

function parseEnvFile(text: string): Record<string, string> {
  const entries = text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const);
  return Object.fromEntries(entries);
}

describe('make compose-env (development sign-in for docker-compose.yml)', () => {
  const env = parseEnvFile(
    composeDevEnvFile({
      publicKeyPem: PEM,
      pepper: 'p'.repeat(48),
      gatewayAdminToken: 't'.repeat(32),
      grafanaAdminPassword: 'g'.repeat(24),
      snapshotSigningKeyPath: './.data/compose/snapshot-signing-key.pem',
      snapshotVerifyKeysPath: './.data/compose/snapshot-verify-keys.pem',
    }),
  );

  it('gives the snapshot projector a signing key and the gateways its public key, which agree', () => {
    expect(env['SNAPSHOT_SIGNING_KEY_PATH']).toBe('./.data/compose/snapshot-signing-key.pem');
    expect(env['SNAPSHOT_VERIFY_KEYS_PATH']).toBe('./.data/compose/snapshot-verify-keys.pem');
    const dir = mkdtempSync(path.join(tmpdir(), 've-compose-keys-'));
    const files = writeSnapshotSigningKeys(path.join(dir, 'compose'));
    const signer = loadSnapshotSigner(files.privateKeyFile);
    expect(loadSnapshotVerifier(files.publicKeyFile).keyIds).toEqual([signer.keyId]);
    expect(statSync(path.join(dir, 'compose')).mode & 0o077).toBe(0);
  });

  it('gives the control plane every setting it refuses to start without, in a form it accepts', () => {
    const parsed = z.object(controlPlaneSettings).parse(env);
    expect(() => assertControlPlaneSettings(parsed)).not.toThrow();
    expect(parsed.CLERK_JWT_KEY).toBe(PEM.trim());
    expect(parsed.CLERK_ISSUER).toBe(DEV_CLERK_ISSUER);
    expect(parsed.API_KEY_PEPPER).toBe('p'.repeat(48));
  });

  // Regression: the gateway took the one-line key literally (backslash-n), so its Clerk verification
  // failed on a key the control plane accepted.
  it('gives the gateways the same key, as a real multi-line PEM', () => {
    const parsed = z.object(gatewaySettings).parse(env);
    expect(parsed.CLERK_JWT_KEY).toBe(PEM.trim());
    expect(parsed.VANTAGEEDGE_DEV_MODE).toBe(true);
  });

  it('gives the gateways an admin token they accept on an open admin listener, and Grafana a password', () => {
    const parsed = parseGatewaySettings({ ...env, GATEWAY_ADMIN_HOST: '0.0.0.0' });
    expect(parsed.GATEWAY_ADMIN_TOKEN).toBe('t'.repeat(32));
    expect(env['GRAFANA_ADMIN_PASSWORD']).toBe('g'.repeat(24));
    expect(env['GRAFANA_ANONYMOUS_VIEWER']).toBe('false');
  });

  it('turns the development sign-in on explicitly, for the dev admin user', () => {
    expect(env['VANTAGEEDGE_DEV_MODE']).toBe('true');
    expect(env['PLATFORM_ADMIN_USER_IDS']).toBe('user_dev_admin');
  });

  it('keeps the key on one line (compose env files have no multi-line values)', () => {
    expect(env['CLERK_JWT_KEY']).not.toContain('\n');
  });
});
