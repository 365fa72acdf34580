import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEV_CLERK_ISSUER, loadOrCreateDevKeys } from './dev-keys.js';
import { DEV_ADMIN_USER_ID, devDataDir, REPO_ROOT } from './dev-settings.js';

/**
 * `make compose-env`: the settings for running docker-compose.yml without a Clerk account. The services
 * verify sign-in tokens with make dev's development key pair (the same one `make dev-token` signs
 * with) and accept those tokens because VANTAGEEDGE_DEV_MODE=true — which is why this goes into its
 * own file, used only when named: `docker compose --env-file .env.compose up`. Never for production.
 */
export function composeDevEnvFile(options: {
  publicKeyPem: string;
  pepper: string;
  gatewayAdminToken: string;
  grafanaAdminPassword: string;
  /** The snapshot signing key pair's files, relative to the repository (where docker compose runs). */
  snapshotSigningKeyPath: string;
  snapshotVerifyKeysPath: string;
}): string {
  return [
    '# DEVELOPMENT-ONLY settings for docker-compose.yml, written by `make compose-env`.',
    '# Use: docker compose --env-file .env.compose up --build   then   export TOKEN=$(make -s dev-token)',
    '# Dev tokens are accepted only because of VANTAGEEDGE_DEV_MODE=true below: never deploy with this file.',
    `API_KEY_PEPPER=${options.pepper}`,
    `CLERK_JWT_KEY=${options.publicKeyPem.trim().replaceAll('\n', '\\n')}`,
    `CLERK_ISSUER=${DEV_CLERK_ISSUER}`,
    'VANTAGEEDGE_DEV_MODE=true',
    `PLATFORM_ADMIN_USER_IDS=${DEV_ADMIN_USER_ID}`,
    '# The gateways\' /status (curl -H "Authorization: Bearer $GATEWAY_ADMIN_TOKEN" 127.0.0.1:8001/status).',
    `GATEWAY_ADMIN_TOKEN=${options.gatewayAdminToken}`,
    '# Grafana (http://127.0.0.1:3000) user admin.',
    `GRAFANA_ADMIN_PASSWORD=${options.grafanaAdminPassword}`,
    '# true: anyone who reaches Grafana may view the dashboards without signing in (never edit them).',
    'GRAFANA_ANONYMOUS_VIEWER=false',
    "# The snapshot projector signs the snapshot topic's records; the gateways apply only what it signed.",
    `SNAPSHOT_SIGNING_KEY_PATH=${options.snapshotSigningKeyPath}`,
    `SNAPSHOT_VERIFY_KEYS_PATH=${options.snapshotVerifyKeysPath}`,
    '',
  ].join('\n');
}

/**
 * A new Ed25519 key pair for the compose stack's snapshot signing, as PEM files in `dir` (owner-only).
 * The private key file itself is readable by others: compose mounts it into the projector's container
 * as is, where the service runs as another user than the one who ran make; the directory keeps it
 * from the host's other users.
 */
export function writeSnapshotSigningKeys(dir: string): { privateKeyFile: string; publicKeyFile: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyFile = path.join(dir, 'snapshot-signing-key.pem');
  const publicKeyFile = path.join(dir, 'snapshot-verify-keys.pem');
  writeFileSync(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
  writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  return { privateKeyFile, publicKeyFile };
}

async function main(): Promise<void> {
  const file = path.join(REPO_ROOT, '.env.compose');
  if (existsSync(file)) {
    process.stdout.write(
      `compose-env: ${path.relative(REPO_ROOT, file)} exists; delete it to make a new one\n`,
    );
    return;
  }
  const keys = await loadOrCreateDevKeys(devDataDir(process.env));
  const signing = writeSnapshotSigningKeys(path.join(devDataDir(process.env), 'compose'));
  const text = composeDevEnvFile({
    publicKeyPem: keys.publicKeyPem,
    pepper: randomBytes(36).toString('base64url'),
    gatewayAdminToken: randomBytes(24).toString('base64url'),
    grafanaAdminPassword: randomBytes(18).toString('base64url'),
    snapshotSigningKeyPath: `./${path.relative(REPO_ROOT, signing.privateKeyFile)}`,
    snapshotVerifyKeysPath: `./${path.relative(REPO_ROOT, signing.publicKeyFile)}`,
  });
  writeFileSync(file, text, { mode: 0o600 });
  process.stdout.write(
    'compose-env: wrote .env.compose (DEVELOPMENT sign-in: dev tokens accepted). Next:\n' +
      '  docker compose --env-file .env.compose up --build\n' +
      '  export TOKEN=$(make -s dev-token)\n',
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await main();
}
