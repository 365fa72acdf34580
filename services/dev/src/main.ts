import '@vantageedge/shared/settings/env-file';
import http from 'node:http';
import type { DevSignIn } from '@vantageedge/control-plane/http/console-router';
import { UniquenessViolationError } from '@vantageedge/shared/event-store/port';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { installProcessPolicy } from '@vantageedge/shared/process/process-policy';
import { exitNaming, SettingsError } from '@vantageedge/shared/settings/load-settings';
import { loadOrCreateDevCertificate } from './dev-certificate.js';
import { DEV_CLERK_ISSUER, loadOrCreateDevKeys } from './dev-keys.js';
import { demoUserIds, describeParts, devDataDir, devEnvironment, exposedListeners } from './dev-settings.js';
import { defaultDevUser, signDevToken } from './dev-token.js';
import { stopEmbeddedDatabaseOnlyInOwnDrain } from './embedded-database.js';
import { DEMO_API_KEY, seedDemo } from './seed.js';
import { startVantageEdge } from './start-dev.js';

/**
 * `make dev`: the whole product in one process on embedded defaults (see docs/dev-mode.md).
 * Settings in the environment or .env always win; unset ones get development defaults.
 */
const say = (line = '') => process.stdout.write(`${line}\n`);

/** GET with a Host header (fetch forbids setting Host). */
function statusOf(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { host }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

const env = devEnvironment(process.env);
const dataDir = devDataDir(env);
let devKeysUsed = false;
let devSignIn: DevSignIn | undefined;
if (!env['CLERK_JWT_KEY'] && !env['CLERK_SECRET_KEY']) {
  const keys = await loadOrCreateDevKeys(dataDir);
  env['CLERK_JWT_KEY'] = keys.publicKeyPem;
  env['CLERK_ISSUER'] = DEV_CLERK_ISSUER;
  devKeysUsed = true;
  // The console's "Sign in as the development admin": the same token make dev-token prints.
  devSignIn = async () => {
    const userId = defaultDevUser(env);
    return { token: await signDevToken(keys, { userId }), userId };
  };
}
// TLS on GATEWAY_TLS_PORT (8443) with a locally generated certificate unless files are configured.
let devCertificateCreated = false;
if (env['GATEWAY_TLS_PORT'] && !env['GATEWAY_TLS_CERT_FILE'] && !env['GATEWAY_TLS_KEY_FILE']) {
  const files = await loadOrCreateDevCertificate(dataDir);
  env['GATEWAY_TLS_CERT_FILE'] = files.certFile;
  env['GATEWAY_TLS_KEY_FILE'] = files.keyFile;
  devCertificateCreated = files.created;
}
const logger = createLogger({ service: 'vantageedge-dev', level: (env['LOG_LEVEL'] ?? 'warn') as 'warn' });

let running: Awaited<ReturnType<typeof startVantageEdge>>;
try {
  running = await startVantageEdge({
    env,
    dataDir,
    logger,
    devSignIn,
    progress: (line) => say(`· ${line}`),
  });
} catch (error) {
  if (error instanceof SettingsError) exitNaming('make dev', error);
  process.stderr.write(
    `make dev: could not start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
}

// The drain below stops the embedded database; its library's own signal hook would race it for the exit code.
stopEmbeddedDatabaseOnlyInOwnDrain();
installProcessPolicy({
  service: 'vantageedge-dev',
  logger,
  deadlineMs: 15_000,
  drain: async (reason) => {
    say(
      `\n${reason.kind === 'signal' ? reason.signal : 'fatal error'}: stopping (gateway, control plane, projectors, demo origin, database)…`,
    );
    await running.close();
    say('stopped.');
  },
});

const originUrl = env['DEMO_ORIGIN_URL'] || running.urls.demoOrigin;
try {
  const seeded = await seedDemo({
    store: running.store,
    apiKeyPepper: running.apiKeyPepper,
    originUrl,
    demoUserIds: demoUserIds(env),
  });
  say(
    seeded.created.length > 0
      ? `· demo data: created ${seeded.created.join(', ')}`
      : '· demo data: already there (kept from the last run)',
  );
} catch (error) {
  // The product still runs; only the demo is missing (e.g. another tenant holds the subdomain demo).
  const reason =
    error instanceof UniquenessViolationError ? `${error.value} is already taken` : String(error);
  process.stderr.write(`make dev: could not seed the demo data: ${reason} (make dev-reset starts over)\n`);
}

// Ready when the gateway serves the demo tenant (its snapshot went through the projector and the bus).
const gatewayPort = new URL(running.urls.gateway).port;
const demoBase = `http://demo.localhost:${gatewayPort}`;
const deadline = Date.now() + 30_000;
for (;;) {
  const ok = await statusOf(`${running.urls.gateway}/api/public/status`, 'demo.localhost').then(
    (status) => status === 200,
    () => false,
  );
  if (ok) break;
  if (Date.now() > deadline) {
    process.stderr.write('make dev: the gateway did not serve the demo tenant within 30 s\n');
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const token = devKeysUsed
  ? await signDevToken(await loadOrCreateDevKeys(dataDir), { userId: defaultDevUser(env) })
  : undefined;

say();
say(`VantageEdge is running (dev mode, ready ${process.uptime().toFixed(1)} s after start)`);
for (const line of describeParts(env)) say(`  ${line}`);
say();
say(`  control plane  ${running.urls.controlPlane}   (API docs: ${running.urls.controlPlane}/docs)`);
say(`  console        ${running.urls.console}   (Sign in as the development admin)`);
say(`  gateway        ${running.urls.gateway}   (demo tenant: ${demoBase})`);
if (running.urls.gatewayTls) {
  const tlsBase = `https://demo.localhost:${new URL(running.urls.gatewayTls).port}`;
  say(
    `  gateway TLS    ${running.urls.gatewayTls}   (HTTPS and HTTP/2: curl -k ${tlsBase}/api/public/posts${devCertificateCreated ? '; certificate generated into .data/dev/tls' : ''})`,
  );
}
say(`  gateway admin  ${running.urls.gatewayAdmin}   (/status, /metrics)`);
say(`  demo origin    ${originUrl}`);
say();
if (token) {
  say(
    `Admin token (DEVELOPMENT ONLY, ${defaultDevUser(env)}, platform admin, 12 h; make dev-token for more):`,
  );
  say(`  export TOKEN=${token}`);
} else {
  say(
    'CLERK_JWT_KEY is configured: use a token signed by that key (make dev-token signs only with the dev key).',
  );
}
say();
say('Demo requests (scripts/test-requests.sh runs them all):');
say(`  curl ${demoBase}/api/public/posts`);
say(`  curl ${demoBase}/api/users/1 -H "Authorization: Bearer $TOKEN"`);
say(`  curl ${demoBase}/api/admin/users -H "X-API-Key: ${DEMO_API_KEY}"`);
say(`  curl -si ${demoBase}/api/posts/1 | grep -i x-cache     # MISS, then HIT`);
say(
  `  for i in {1..150}; do curl -s -o /dev/null -w '%{http_code}\\n' ${demoBase}/api/users/1 -H "Authorization: Bearer $TOKEN"; done | sort | uniq -c`,
);
say('    (/api/users/*: 100-request burst, then 1 request/s per user → the loop gets 429s)');
say(`  curl ${running.urls.controlPlane}/api/v1/tenants -H "Authorization: Bearer $TOKEN"`);
say();
const exposed = exposedListeners(env);
if (exposed.length > 0) {
  say(
    `WARNING: ${exposed.join(', ')}: other machines reach this make dev, whose gateway takes this machine's loopback servers as origins and whose demo key and pepper are published. Unset them to stay on 127.0.0.1.`,
  );
  say();
}
say(`Stop with Ctrl-C (data is kept in ${dataDir}/dev; make dev-reset wipes it).`);
say('READY');
