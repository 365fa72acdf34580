import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlPlaneSettings } from '@vantageedge/control-plane/settings';
import { gatewaySettings } from '@vantageedge/gateway/settings';
import { readModelProjectorSettings, readModelSettings } from '@vantageedge/projections/read-models/settings';
import {
  projectorMetricsSettings,
  projectorShutdownSettings,
} from '@vantageedge/projections/runner/settings';
import { republishSettings, snapshotProjectorSettings } from '@vantageedge/projections/snapshots/settings';
import { usageFlusherSettings } from '@vantageedge/projections/usage/settings';
import { eventStoreSettings } from '@vantageedge/shared/event-store/settings';
import { cacheRedisSettings } from '@vantageedge/shared/redis/cache-redis';
import { redisSettings } from '@vantageedge/shared/redis/client';
import { observabilitySettings } from '@vantageedge/shared/settings/common-settings';
import {
  configPlaneSettings,
  rolloutSettings,
  snapshotBusSettings,
} from '@vantageedge/shared/snapshot-bus/settings';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { settingsReadBy } from './settings-read.js';

/**
 * `.env.example` is where every setting is documented (README, "Configuration"): each setting a
 * service validates at start-up or reads from its environment is named there, each name there is read
 * somewhere, and a value it shows for a setting with a fixed default is that default.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** The code the services, projectors, migrations and the CLI run (not tests, test helpers or benchmarks). */
const SERVICE_SOURCES = [
  'tools/cli/src',
  'services/control-plane/src',
  'services/gateway/src',
  'services/dev/src',
  'projections/src',
  'shared/src',
  'migrations/src',
];
const NOT_SERVICE_CODE = new Set(['bench', 'testing', 'test-helpers', 'node_modules']);

/**
 * Settings of make dev's load test (`make load-test`), a command-line tool and no service: documented
 * with it in docs/dev-mode.md.
 */
const TOOL_SETTINGS: Record<string, string> = {
  GATEWAY_URL: 'docs/dev-mode.md',
  DEMO_HOST: 'docs/dev-mode.md',
  TOKEN: 'docs/dev-mode.md',
};

function sourceFiles(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(folder, entry.name);
    if (entry.isDirectory()) return NOT_SERVICE_CODE.has(entry.name) ? [] : sourceFiles(relative);
    return entry.name.endsWith('.ts') && !/\.test\.ts$/.test(entry.name) ? [relative] : [];
  });
}

/** Every setting the code reads, with the files that read it. */
function settingsRead(): Map<string, string[]> {
  return settingsReadBy(ROOT, SERVICE_SOURCES.flatMap(sourceFiles));
}

/** The settings .env.example names, set (`NAME=value`) or shown commented out (`# NAME=value`). */
function documentedSettings(): Map<string, string> {
  return new Map(
    [...read('.env.example').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((match) => [
      match[1] ?? '',
      match[2] ?? '',
    ]),
  );
}

/** Names read only by a library itself (the OpenTelemetry SDK's sampler), never by our code. */
const READ_BY_LIBRARIES = new Set(['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG']);
/** The operating system's own variables, which the code honours but no one sets for VantageEdge. */
const PLATFORM_VARIABLES = new Set(['XDG_CONFIG_HOME']);

describe('the settings .env.example documents', () => {
  const documented = documentedSettings();
  const readByCode = settingsRead();

  it('finds the settings shapes it scans (the scan itself works)', () => {
    for (const name of [
      'DATABASE_URL',
      'GATEWAY_PORT',
      'CONTROL_PLANE_PORT',
      'SNAPSHOT_PROJECTOR_METRICS_PORT',
    ])
      expect(readByCode.has(name), name).toBe(true);
  });

  it('names every setting a service reads', () => {
    const undocumented = [...readByCode]
      .filter(([name]) => !documented.has(name) && !(name in TOOL_SETTINGS) && !PLATFORM_VARIABLES.has(name))
      .map(([name, files]) => `${name} (read by ${[...new Set(files)].join(', ')})`);
    expect(undocumented).toEqual([]);
    for (const [name, doc] of Object.entries(TOOL_SETTINGS))
      expect(read(doc), `${name} in ${doc}`).toContain(name);
  });

  it('names every VE_* variable the infrastructure scripts read', () => {
    const scripts = readdirSync(path.join(ROOT, 'infra')).filter((file) => file.endsWith('.sh'));
    const variables = new Set(
      scripts.flatMap((file) =>
        [...read(path.join('infra', file)).matchAll(/\$\{(VE_[A-Z0-9_]+)[:}]/g)].map(
          (match) => match[1] ?? '',
        ),
      ),
    );
    expect(variables.size).toBeGreaterThan(0);
    expect([...variables].filter((name) => !documented.has(name))).toEqual([]);
  });

  it('names only settings something reads', () => {
    const code = everyReader();
    const unread = [...documented.keys()].filter(
      (name) => !readByCode.has(name) && !READ_BY_LIBRARIES.has(name) && !code.includes(name),
    );
    expect(unread).toEqual([]);
  });

  it('shows the fixed default of every setting it gives a value for', () => {
    const shapes: Record<string, z.ZodType> = {
      ...eventStoreSettings,
      ...redisSettings,
      ...cacheRedisSettings,
      ...observabilitySettings,
      ...snapshotBusSettings,
      ...rolloutSettings,
      ...configPlaneSettings,
      ...projectorMetricsSettings,
      ...projectorShutdownSettings,
      ...usageFlusherSettings,
      ...readModelSettings,
      ...readModelProjectorSettings,
      ...snapshotProjectorSettings,
      ...republishSettings,
      ...gatewaySettings,
      ...controlPlaneSettings,
    };
    const drift: string[] = [];
    for (const [name, schema] of Object.entries(shapes)) {
      const shown = documented.get(name);
      const fixedDefault = schema.safeParse(undefined);
      if (shown === undefined || shown === '' || !fixedDefault.success || fixedDefault.data === undefined)
        continue;
      const parsed = schema.safeParse(shown);
      const same = parsed.success && JSON.stringify(parsed.data) === JSON.stringify(fixedDefault.data);
      if (!same) drift.push(`${name}=${shown}, but the default is ${JSON.stringify(fixedDefault.data)}`);
    }
    expect(drift).toEqual([]);
  });
});

/**
 * The text of everything that may read a setting besides the services' shapes: their other code, the
 * Makefile, infra scripts (VE_*, PG_BIN_DIR), benchmarks and the test harnesses (TEST_*_URL).
 */
function everyReader(): string {
  const folders = [
    'services',
    'shared',
    'projections',
    'migrations',
    'tools',
    'infra',
    'scripts',
    'bench',
    'e2e',
  ];
  const files = folders.flatMap((folder) =>
    readdirSync(path.join(ROOT, folder), { withFileTypes: true, recursive: true })
      .filter((entry) => entry.isFile() && /\.(ts|sh|mjs)$/.test(entry.name))
      .map((entry) => path.join(entry.parentPath, entry.name))
      .filter((file) => !file.includes(`${path.sep}node_modules${path.sep}`)),
  );
  return [path.join(ROOT, 'Makefile'), ...files].map((file) => readFileSync(file, 'utf8')).join('\n');
}
