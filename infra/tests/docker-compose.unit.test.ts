import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlPlaneSettings, controlPlaneStopDeadlineSeconds } from '@vantageedge/control-plane/settings';
import { gatewaySettings, gatewayStopDeadlineSeconds } from '@vantageedge/gateway/settings';
import {
  projectorShutdownSettings,
  projectorStopDeadlineSeconds,
} from '@vantageedge/projections/runner/settings';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
  originBlockedCidrsSetting,
} from '@vantageedge/shared/net/origin-address-policy';
import { EXIT_LOG_FLUSH_MS } from '@vantageedge/shared/process/process-policy';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BUILD_ENTRY_POINTS } from '../../scripts/build-entry-points.js';
import { sourcesBundled } from '../../scripts/bundled-sources.js';
import { settingsReadBy } from './settings-read.js';

/**
 * Static checks of docker-compose.yml and infra/docker/ (no Docker engine on CI machines; `make test-ops`
 * also runs `docker-compose config`): the file references only things that exist, matches the natively
 * run infrastructure, and keeps the settings whose absence once broke the stack.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  stop_grace_period?: string;
  secrets?: Array<string | { source: string }>;
}

const env = (service: Service | undefined) => (service?.environment ?? {}) as Record<string, string | number>;
const dependencies = (service: Service | undefined) =>
  Array.isArray(service?.depends_on) ? service.depends_on : Object.keys(service?.depends_on ?? {});

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  'x-node-service': Service;
  services: Record<string, Service>;
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }>;
  secrets?: Record<string, { file: string }>;
};
/** What `${NAME:-value}` gives when NAME is not set. */
const composeDefault = (value: string | number | undefined) =>
  String(value ?? '').replace(/^\$\{[A-Z0-9_]+:-(.*)\}$/, '$1');
const services = Object.entries(compose.services);
const nodeServices = services.filter(([, service]) => service.build !== undefined);
/** The entry point (as in BUILD_ENTRY_POINTS) a Node service's command runs. */
const entryPointOf = (service: Service) => /^dist\/(.+)\.js$/.exec(service.command?.[0] ?? '')?.[1] ?? '';
/** The value a service's setting has when the operator's .env does not set it. */
const environmentDefaults = (service: Service) =>
  Object.fromEntries(Object.entries(env(service)).map(([name, value]) => [name, composeDefault(value)]));
/** Docker Compose's duration (`35s`, `1m30s`) in seconds; unset, Docker waits 10 s before SIGKILL. */
function durationSeconds(text = '10s'): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(text);
  if (!match || text === '') throw new Error(`not a duration: ${text}`);
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0);
}

describe('docker-compose.yml', () => {
  it('has the whole stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'control-plane',
        'eventstoredb',
        'gateway-a',
        'gateway-b',
        'grafana',
        'jaeger',
        'kafka',
        'migrate',
        'postgres',
        'prometheus',
        'read-model-projector',
        'redis',
        'redis-cache',
        'snapshot-projector',
      ].sort(),
    );
  });

  it('builds every Node service from the one Dockerfile and runs a compiled entry point make build emits', () => {
    expect(nodeServices.length).toBeGreaterThanOrEqual(6);
    const built = new Set(Object.keys(BUILD_ENTRY_POINTS).map((entry) => `dist/${entry}.js`));
    for (const [name, service] of nodeServices) {
      expect(existsSync(path.join(ROOT, service.build?.dockerfile ?? '')), name).toBe(true);
      const entry = service.command?.[0] ?? '';
      expect(built.has(entry), `${name}: ${entry}`).toBe(true);
    }
  });

  it('only depends on services it defines', () => {
    for (const [name, service] of services) {
      for (const dep of dependencies(service))
        expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined();
    }
  });

  // Regression: the read-model projector and the OpenTelemetry collector had none.
  it('gives every long-running service a healthcheck', () => {
    for (const [name, service] of services) {
      if (service.restart === 'no') continue;
      expect(service.healthcheck?.test?.length, name).toBeGreaterThan(0);
    }
  });

  // Regression: KAFKA_LOG_DIRS was unset, so the broker wrote under /tmp and every recreated
  // container lost the snapshot topic (and gateways started with no tenants).
  it('keeps the Kafka log directory on the volume, under a fixed cluster id', () => {
    const kafka = compose.services['kafka'];
    const logDirs = String(env(kafka)['KAFKA_LOG_DIRS'] ?? '');
    expect(logDirs).not.toBe('');
    const mounts = (kafka?.volumes ?? []).map((volume) => volume.split(':')[1] ?? '');
    for (const dir of logDirs.split(','))
      expect(
        mounts.some((mount) => dir === mount || dir.startsWith(`${mount}/`)),
        dir,
      ).toBe(true);
    expect(String(env(kafka)['CLUSTER_ID'] ?? '')).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  // Regression: the projectors' metrics listened on 127.0.0.1 inside their containers and Prometheus
  // had no job for them, so projector lag was invisible.
  it('has Prometheus scrape every Node service on the port it listens on, bound to all interfaces', () => {
    const prometheus = parse(
      readFileSync(path.join(ROOT, 'infra/observability/prometheus/prometheus.yml'), 'utf8'),
    ) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
    const targets = prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    const expected: Record<string, string> = {
      'control-plane': `control-plane:${env(compose.services['control-plane'])['CONTROL_PLANE_METRICS_PORT']}`,
      'gateway-a': `gateway-a:${env(compose.services['gateway-a'])['GATEWAY_ADMIN_PORT']}`,
      'gateway-b': `gateway-b:${env(compose.services['gateway-b'])['GATEWAY_ADMIN_PORT']}`,
      'snapshot-projector': `snapshot-projector:${env(compose.services['snapshot-projector'])['SNAPSHOT_PROJECTOR_METRICS_PORT']}`,
      'read-model-projector': `read-model-projector:${env(compose.services['read-model-projector'])['READ_MODEL_PROJECTOR_METRICS_PORT']}`,
    };
    for (const [name, target] of Object.entries(expected)) {
      expect(target, name).not.toMatch(/:undefined$/);
      expect(targets, name).toContain(target);
    }
    for (const name of ['snapshot-projector', 'read-model-projector'])
      expect(env(compose.services[name])['PROJECTOR_METRICS_HOST'], name).toBe('0.0.0.0');
    expect(env(compose.services['control-plane'])['CONTROL_PLANE_METRICS_HOST']).toBe('0.0.0.0');
  });

  // Regression: the control plane waited for Kafka (which it does not use) but not for Redis (which it does).
  it('starts the control plane after the servers it uses', () => {
    const deps = dependencies(compose.services['control-plane']);
    expect(deps).toEqual(expect.arrayContaining(['migrate', 'redis']));
    expect(deps).not.toContain('kafka');
  });

  // Regression: the cache and the counters shared one volatile-lru Redis, so a tenant filling its cache
  // share evicted other tenants' exhausted rate-limit and quota counters (their limits started over).
  it('keeps the counters in a Redis that never evicts and the cache in its own, evicting entries only', () => {
    const flags = (name: string) => {
      const command = compose.services[name]?.command ?? [];
      return command[command.indexOf('--maxmemory-policy') + 1];
    };
    expect(flags('redis')).toBe('noeviction');
    expect(flags('redis-cache')).toBe('volatile-lru');
    for (const name of ['control-plane', 'gateway-a', 'gateway-b']) {
      expect(env(compose.services[name])['GATEWAY_CACHE_REDIS_URL'], name).toBe('redis://redis-cache:6379');
      expect(dependencies(compose.services[name]), name).toEqual(
        expect.arrayContaining(['redis', 'redis-cache']),
      );
    }
  });

  // Whoever may write the snapshot topic would otherwise set every tenant's config on every gateway.
  it('has the snapshot projector sign the topic and the gateways verify it, with keys compose-env makes', () => {
    expect(env(compose.services['snapshot-projector'])['SNAPSHOT_SIGNING_KEY_FILE']).toBe(
      '/run/secrets/snapshot-signing-key',
    );
    expect(compose.services['snapshot-projector']?.secrets).toEqual(['snapshot-signing-key']);
    for (const name of ['gateway-a', 'gateway-b']) {
      expect(env(compose.services[name])['SNAPSHOT_VERIFY_KEYS_FILE'], name).toBe(
        '/run/secrets/snapshot-verify-keys',
      );
      // The replicas get the public keys only, never the signing key.
      expect(compose.services[name]?.secrets, name).toEqual(['snapshot-verify-keys']);
    }
    expect(compose.secrets?.['snapshot-signing-key']?.file).toMatch(
      /^\$\{SNAPSHOT_SIGNING_KEY_PATH:\?.*make compose-env/,
    );
    expect(compose.secrets?.['snapshot-verify-keys']?.file).toMatch(
      /^\$\{SNAPSHOT_VERIFY_KEYS_PATH:\?.*make compose-env/,
    );
  });

  // Regression: without a Clerk account the control plane crash-looped on a missing CLERK_JWT_KEY.
  it('refuses to start the stack without a sign-in key, naming the development quick start', () => {
    const key = String(env(compose.services['control-plane'])['CLERK_JWT_KEY']);
    expect(key).toMatch(/^\$\{CLERK_JWT_KEY:\?.*make compose-env/);
    // Dev tokens stay refused unless the env file turns the development sign-in on.
    expect(env(compose.services['control-plane'])['VANTAGEEDGE_DEV_MODE']).toMatch(
      /^\$\{VANTAGEEDGE_DEV_MODE:-false\}$/,
    );
  });

  // The gateways' admin listeners are open on the compose network (Prometheus scrapes them): without a
  // token their /status lists every tenant, subdomain and custom domain to any container.
  it('refuses to start the gateways without an admin token for /status, naming the quick start', () => {
    for (const name of ['gateway-a', 'gateway-b']) {
      expect(env(compose.services[name])['GATEWAY_ADMIN_HOST'], name).toBe('0.0.0.0');
      expect(String(env(compose.services[name])['GATEWAY_ADMIN_TOKEN']), name).toMatch(
        /^\$\{GATEWAY_ADMIN_TOKEN:\?.*make compose-env/,
      );
    }
  });

  // The gateways' /metrics (every tenant's routes and traffic) needs their admin token too.
  it('scrapes the gateways with their admin token, written where the scrape job reads it', () => {
    const prometheusConfig = parse(
      readFileSync(path.join(ROOT, 'infra/observability/prometheus/prometheus.yml'), 'utf8'),
    ) as { scrape_configs: Array<{ job_name: string; authorization?: { credentials_file?: string } }> };
    const gatewayJob = prometheusConfig.scrape_configs.find((job) => job.job_name === 'gateway');
    const tokenFile = gatewayJob?.authorization?.credentials_file;
    expect(tokenFile).toMatch(/^\/prometheus\//);
    const prometheus = compose.services['prometheus'] as Service & { entrypoint?: string[] };
    expect(String(env(prometheus)['GATEWAY_ADMIN_TOKEN'])).toMatch(
      /^\$\{GATEWAY_ADMIN_TOKEN:\?.*make compose-env/,
    );
    expect((prometheus.entrypoint ?? []).join(' ')).toContain(`"$$GATEWAY_ADMIN_TOKEN" > ${tokenFile}`);
  });

  // Regression: a tenant's origin named one of the stack's own services (http://prometheus:9090,
  // http://grafana:3000, http://jaeger:16686, http://eventstoredb:2113), whose answers hold every
  // tenant's metrics and traces: the compose network is a private range, which origins may use.
  it('keeps tenant origins off the stack’s own network, and keeps the default ranges blocked', () => {
    const subnets = (compose.networks?.['default']?.ipam?.config ?? []).map((entry) => entry.subnet);
    expect(subnets).toHaveLength(1);
    const subnet = String(subnets[0]);
    const inside = subnet.replace(/\.0\/\d+$/, '.10');
    for (const name of ['control-plane', 'gateway-a', 'gateway-b']) {
      const value = composeDefault(env(compose.services[name])['ORIGIN_BLOCKED_CIDRS']);
      const { ORIGIN_BLOCKED_CIDRS: blocked } = parseSettings(
        { ORIGIN_BLOCKED_CIDRS: originBlockedCidrsSetting },
        { ORIGIN_BLOCKED_CIDRS: value },
      );
      expect(blocked, name).toEqual(expect.arrayContaining([...DEFAULT_ORIGIN_BLOCKED_CIDRS, subnet]));
      expect(new OriginAddressPolicy(blocked).refusal(inside, 9090), name).toContain(subnet);
    }
  });

  it('has no default Grafana admin password', () => {
    expect(String(env(compose.services['grafana'])['GF_SECURITY_ADMIN_PASSWORD'])).toMatch(
      /^\$\{GRAFANA_ADMIN_PASSWORD:\?.*make compose-env/,
    );
  });

  it('shows Grafana without a sign-in only when the operator opts in', () => {
    const anonymous = String(env(compose.services['grafana'])['GF_AUTH_ANONYMOUS_ENABLED']);
    expect(composeDefault(anonymous)).toBe('false');
  });

  it('runs Jaeger v2 (1.x is end of life) and sends traces to it', () => {
    expect(compose.services['jaeger']?.image).toMatch(/^jaegertracing\/jaeger:2\./);
    for (const [name, service] of nodeServices)
      expect(env(service)['OTEL_EXPORTER_OTLP_ENDPOINT'], name).toBe('http://jaeger:4318');
  });

  it('provisions Grafana with the dashboards and Prometheus with the rules of infra/observability', () => {
    const mounts = (name: string) => (compose.services[name]?.volumes ?? []).map((v) => v.split(':')[0]);
    expect(mounts('grafana')).toEqual(
      expect.arrayContaining([
        './infra/observability/grafana/provisioning',
        './infra/observability/grafana/dashboards',
      ]),
    );
    expect(mounts('prometheus')).toContain('./infra/observability/prometheus/rules');
  });

  it('publishes ports on 127.0.0.1 only, each host port once', () => {
    const hostPorts = services.flatMap(([, service]) => service.ports ?? []);
    for (const mapping of hostPorts) expect(mapping).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    const published = hostPorts.map((mapping) => mapping.split(':')[1]);
    expect(new Set(published).size).toBe(published.length);
  });

  // Regression: the gateways' grace period (35 s) ended before their own shutdown deadline (drain 5 +
  // timeout 20 + 15 s for the last usage batch and the connections), and the projectors had Docker's
  // 10 s against their 30 s: `docker compose stop` killed them mid-stop.
  it('gives every long-running Node service longer to stop than its own shutdown deadline', () => {
    const stopDeadlineSeconds: Record<string, (environment: Record<string, string>) => number> = {
      'services/gateway/main': (environment) =>
        gatewayStopDeadlineSeconds(
          parseSettings(
            {
              GATEWAY_DRAIN_SECONDS: gatewaySettings.GATEWAY_DRAIN_SECONDS,
              GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: gatewaySettings.GATEWAY_SHUTDOWN_TIMEOUT_SECONDS,
            },
            environment,
          ),
        ),
      'services/control-plane/main': (environment) =>
        controlPlaneStopDeadlineSeconds(
          parseSettings(
            {
              CONTROL_PLANE_DRAIN_SECONDS: controlPlaneSettings.CONTROL_PLANE_DRAIN_SECONDS,
              CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS:
                controlPlaneSettings.CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS,
            },
            environment,
          ),
        ),
      'projections/snapshots/main': (environment) =>
        projectorStopDeadlineSeconds(parseSettings(projectorShutdownSettings, environment)),
      'projections/read-models/main': (environment) =>
        projectorStopDeadlineSeconds(parseSettings(projectorShutdownSettings, environment)),
    };
    const tooShort: string[] = [];
    for (const [name, service] of nodeServices) {
      if (service.restart === 'no') continue;
      const deadline = stopDeadlineSeconds[entryPointOf(service)];
      expect(deadline, `${name}: no stop deadline known for ${entryPointOf(service)}`).toBeDefined();
      // The process exits at its deadline at the latest, once its last log lines are written.
      const exitsWithin = (deadline?.(environmentDefaults(service)) ?? 0) + EXIT_LOG_FLUSH_MS / 1000;
      const grace = durationSeconds(service.stop_grace_period);
      if (grace <= exitsWithin)
        tooShort.push(`${name}: stop_grace_period ${grace} s, but it may take ${exitsWithin} s to exit`);
    }
    expect(tooShort).toEqual([]);
  });

  // Regression: the read-model projector flushes the gateways' usage batches from Redis, but started
  // without waiting for it.
  it('starts each projector after the servers it uses', () => {
    expect(dependencies(compose.services['read-model-projector'])).toEqual(
      expect.arrayContaining(['migrate', 'redis']),
    );
    expect(dependencies(compose.services['snapshot-projector'])).toEqual(
      expect.arrayContaining(['migrate', 'kafka']),
    );
  });

  it('probes each Node service on /healthz or /readyz of a port it listens on', () => {
    const listenerPorts = (service: Service) =>
      Object.entries(environmentDefaults(service))
        .filter(([name]) => name.endsWith('_PORT'))
        .map(([, value]) => value);
    for (const [name, service] of nodeServices) {
      if (service.restart === 'no') continue;
      const probe = /http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)'/.exec(
        (service.healthcheck?.test ?? []).join(' '),
      );
      expect(probe, `${name}: healthcheck URL`).not.toBeNull();
      expect(listenerPorts(service), name).toContain(probe?.[1]);
      expect(['/healthz', '/readyz'], name).toContain(probe?.[2]);
      for (const mapping of service.ports ?? [])
        expect(listenerPorts(service), `${name}: ${mapping}`).toContain(mapping.split(':')[2]);
    }
  });

  it('runs the Node services on the listener ports .env.example documents as their defaults', () => {
    const documented = new Map(
      [
        ...readFileSync(path.join(ROOT, '.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=(.*)$/gm),
      ].map((match) => [match[1], match[2]]),
    );
    for (const [name, service] of nodeServices)
      for (const [setting, value] of Object.entries(environmentDefaults(service)))
        if (setting.endsWith('_PORT')) expect(value, `${name}: ${setting}`).toBe(documented.get(setting));
  });

  it('passes Node services only settings that .env.example documents', () => {
    const documented = new Set(
      [...readFileSync(path.join(ROOT, '.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map(
        (match) => match[1],
      ),
    );
    for (const [name, service] of nodeServices) {
      for (const setting of Object.keys(service.environment ?? {})) {
        expect(documented.has(setting), `${name}: ${setting} is not in .env.example`).toBe(true);
      }
    }
  });

  it('mounts config files that exist', () => {
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] ?? '';
        if (source.startsWith('./'))
          expect(existsSync(path.join(ROOT, source)), `${name}: ${source}`).toBe(true);
      }
    }
  });

  it('runs the same Kafka version as the native broker', () => {
    const pom = readFileSync(path.join(ROOT, 'infra/kafka/pom.xml'), 'utf8');
    const pinned = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
    expect(compose.services['kafka']?.image).toBe(`apache/kafka:${pinned}`);
  });
});

/**
 * A setting a service does not read is silently ignored: a misspelt name in docker-compose.yml leaves
 * the service on its default. The names are checked against what each compiled entry point's own
 * sources read (the settings shapes and environment reads esbuild bundles into it).
 */
describe('docker-compose.yml settings the compiled services read', () => {
  let bundled: Map<string, readonly string[]>;
  beforeAll(async () => {
    bundled = await sourcesBundled(ROOT, BUILD_ENTRY_POINTS);
  });
  const readBy = (entryPoint: string) => settingsReadBy(ROOT, bundled.get(entryPoint) ?? []);
  /** Set for every Node service (x-node-service); each must be read by at least one of them. */
  const shared = new Set(Object.keys(env(compose['x-node-service'])));

  it('finds the settings a compiled entry point reads (the scan itself works)', () => {
    expect(shared.has('DATABASE_URL')).toBe(true);
    expect(readBy('services/gateway/main').has('GATEWAY_ADMIN_PORT')).toBe(true);
    expect(readBy('migrations/cli').has('DATABASE_URL')).toBe(true);
    expect(readBy('migrations/cli').has('GATEWAY_ADMIN_PORT')).toBe(false);
  });

  it('passes each Node service only settings its own entry point reads', () => {
    const unread: string[] = [];
    for (const [name, service] of nodeServices) {
      const read = readBy(entryPointOf(service));
      for (const setting of Object.keys(env(service)))
        if (!shared.has(setting) && !read.has(setting)) unread.push(`${name}: ${setting}`);
    }
    expect(unread).toEqual([]);
  });

  it('passes all Node services only settings one of them reads', () => {
    const readByAny = new Set(
      nodeServices.flatMap(([, service]) => [...readBy(entryPointOf(service)).keys()]),
    );
    expect([...shared].filter((setting) => !readByAny.has(setting))).toEqual([]);
  });
});

describe('infra/docker/node-service.Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'infra/docker/node-service.Dockerfile'), 'utf8');

  it('is multi-stage on Node 24, ships production dependencies only, and runs as a non-root user', () => {
    const stages = dockerfile.match(/^FROM node:24-slim AS \w+$/gm) ?? [];
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });

  it('copies every workspace package.json before npm ci (npm workspaces)', () => {
    const rootPackage = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      workspaces: string[];
    };
    const workspaces = rootPackage.workspaces.flatMap((pattern) =>
      pattern.endsWith('/*')
        ? readdirSync(path.join(ROOT, pattern.slice(0, -2)))
            .map((name) => `${pattern.slice(0, -2)}/${name}`)
            .filter((dir) => existsSync(path.join(ROOT, dir, 'package.json')))
        : [pattern],
    );
    expect(workspaces.length).toBeGreaterThanOrEqual(6);
    // Each stage that runs npm ci needs them all first.
    for (const stage of dockerfile.split(/^FROM /m).filter((text) => text.includes('RUN npm ci'))) {
      const beforeCi = stage.slice(0, stage.indexOf('RUN npm ci'));
      for (const workspace of workspaces)
        expect(beforeCi, workspace).toContain(`COPY ${workspace}/package.json`);
    }
  });

  // Regression: scripts/build.ts imported scripts/service-bundle.ts, which the build stage did not copy,
  // so the image did not build.
  it('copies into its build stage every file make build runs', async () => {
    const buildStage =
      dockerfile.split(/^FROM /m).find((stage) => /^RUN .*scripts\/build\.ts$/m.test(stage)) ?? '';
    const copied = [...buildStage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((copy) =>
      (copy[1] ?? '').split(/\s+/).map((source) => path.posix.normalize(source)),
    );
    const needed =
      (await sourcesBundled(ROOT, { 'scripts/build': 'scripts/build.ts' })).get('scripts/build') ?? [];
    expect(needed).toContain('scripts/build.ts');
    const missing = needed.filter(
      (file) => !copied.some((source) => file === source || file.startsWith(`${source}/`)),
    );
    expect(missing).toEqual([]);
  });

  it('builds with the command make build runs and starts a compiled entry point on plain node', () => {
    const makefile = readFileSync(path.join(ROOT, 'Makefile'), 'utf8');
    const recipe = /^build:.*\n\t@?(.+)$/m.exec(makefile)?.[1]?.replace('$(TSX)', 'node_modules/.bin/tsx');
    expect(recipe).toBe('node_modules/.bin/tsx scripts/build.ts');
    expect(dockerfile).toContain(`RUN ${recipe}`);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node"\]$/m);
    expect(dockerfile).not.toMatch(/tsx"|--import/);
  });
});
