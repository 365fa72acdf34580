import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Static checks of docker-compose.yml and infra/docker/ (no Docker on CI machines): the file parses,
 * references only things that exist, and matches the natively run infrastructure.
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
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = Object.entries(compose.services);
const nodeServices = services.filter(([, service]) => service.build !== undefined);

/** Long-running services with nothing to probe (no listener); `restart` covers a crash. */
const WITHOUT_HEALTHCHECK = new Set(['read-model-projector', 'otel-collector']);

describe('docker-compose.yml', () => {
  it('has the whole stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'control-plane',
        'eventstoredb',
        'gateway-a',
        'gateway-b',
        'jaeger',
        'kafka',
        'migrate',
        'otel-collector',
        'postgres',
        'prometheus',
        'read-model-projector',
        'redis',
        'snapshot-projector',
      ].sort(),
    );
  });

  it('builds every Node service from the one Dockerfile and starts an entry point that exists', () => {
    expect(nodeServices.length).toBeGreaterThanOrEqual(6);
    for (const [name, service] of nodeServices) {
      expect(existsSync(path.join(ROOT, service.build?.dockerfile ?? '')), name).toBe(true);
      const entry = service.command?.[0] ?? '';
      expect(existsSync(path.join(ROOT, entry)), `${name}: ${entry}`).toBe(true);
    }
  });

  it('only depends on services it defines', () => {
    for (const [name, service] of services) {
      const deps = Array.isArray(service.depends_on)
        ? service.depends_on
        : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined();
    }
  });

  it('gives every long-running service a healthcheck', () => {
    for (const [name, service] of services) {
      if (service.restart === 'no' || WITHOUT_HEALTHCHECK.has(name)) continue;
      expect(service.healthcheck?.test?.length, name).toBeGreaterThan(0);
    }
  });

  it('publishes ports on 127.0.0.1 only, each host port once', () => {
    const hostPorts = services.flatMap(([, service]) => service.ports ?? []);
    for (const mapping of hostPorts) expect(mapping).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    const published = hostPorts.map((mapping) => mapping.split(':')[1]);
    expect(new Set(published).size).toBe(published.length);
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

describe('infra/docker/node-service.Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'infra/docker/node-service.Dockerfile'), 'utf8');

  it('is multi-stage on Node 20, installs production dependencies only, and runs as a non-root user', () => {
    const stages = dockerfile.match(/^FROM node:20[^\s]* AS \w+$/gm) ?? [];
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });
});
