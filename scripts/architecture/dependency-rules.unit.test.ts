import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeViolation, findViolations, unusedDependencies, type Violation } from './dependency-rules.js';
import {
  importsOf,
  owningPackage,
  readWorkspace,
  roleOf,
  type Workspace,
  type WorkspacePackage,
} from './import-graph.js';

const REPOSITORY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Known violations that another change is removing right now. This list must be empty: it exists so
 * the rules can be strict today. Each entry must still occur (the test fails once it is fixed, so the
 * entry is deleted with the fix and the list cannot rot).
 */
const pendingViolations: readonly Violation[] = [];

const key = (violation: Violation) => describeViolation(violation);

describe('dependency rules of the repository (docs/architecture.md)', () => {
  const violations = findViolations(readWorkspace(REPOSITORY));

  it('has no violation besides the pending ones', () => {
    const pending = new Set(pendingViolations.map(key));
    expect(violations.map(key).filter((violation) => !pending.has(violation))).toEqual([]);
  });

  it('still has every pending violation (delete an entry when its fix lands)', () => {
    const actual = new Set(violations.map(key));
    expect(pendingViolations.map(key).filter((violation) => !actual.has(violation))).toEqual([]);
  });

  // Regression: the gateway declared @clerk/backend and @opentelemetry/sdk-trace-base, which only its
  // tests import, as production dependencies.
  it('declares as dependencies only packages the production code imports', () => {
    expect(unusedDependencies(readWorkspace(REPOSITORY)).map(key)).toEqual([]);
  });

  it('reads every package and the files of each', () => {
    const workspace = readWorkspace(REPOSITORY);
    const filesPerPackage = new Map<string, number>();
    for (const file of workspace.files) {
      filesPerPackage.set(file.packageName, (filesPerPackage.get(file.packageName) ?? 0) + 1);
    }
    for (const name of [
      'vantageedge',
      '@vantageedge/shared',
      '@vantageedge/migrations',
      '@vantageedge/projections',
      '@vantageedge/control-plane',
      '@vantageedge/gateway',
      '@vantageedge/dev',
      '@vantageedge/console',
    ]) {
      expect(filesPerPackage.get(name), name).toBeGreaterThan(0);
    }
  });
});

/** A small workspace in memory, to show each rule catches what it should. */
const PACKAGES: WorkspacePackage[] = [
  pkg('vantageedge', '', ['pg'], ['vitest']),
  pkg('@vantageedge/shared', 'shared', ['pg'], ['@vantageedge/migrations', 'vitest']),
  pkg('@vantageedge/migrations', 'migrations', ['@vantageedge/shared']),
  pkg('@vantageedge/projections', 'projections', ['@vantageedge/shared']),
  pkg('@vantageedge/gateway', 'services/gateway', ['@vantageedge/shared'], ['@vantageedge/projections']),
  pkg('@vantageedge/control-plane', 'services/control-plane', [
    '@vantageedge/shared',
    '@vantageedge/projections',
  ]),
  pkg('@vantageedge/dev', 'services/dev', []),
  // Deployed only as the static files Vite builds: everything it is made of is a devDependency.
  pkg(
    '@vantageedge/console',
    'services/console',
    [],
    ['@vantageedge/control-plane', '@vantageedge/shared', 'preact', 'vite'],
  ),
];

function pkg(
  name: string,
  dir: string,
  dependencies: string[],
  devDependencies: string[] = [],
): WorkspacePackage {
  return { name, dir, dependencies: new Set(dependencies), devDependencies: new Set(devDependencies) };
}

/** `files`: path → its import lines. */
function violationsOf(files: Record<string, string[]>, packages = PACKAGES): string[] {
  const workspace: Workspace = {
    root: '/nowhere',
    packages,
    files: Object.entries(files).map(([filePath, lines]) => ({
      path: filePath,
      packageName: owningPackage(packages, filePath).name,
      role: roleOf(filePath),
      imports: importsOf(lines.join('\n')),
    })),
  };
  return findViolations(workspace).map(key);
}

describe('the dependency rules', () => {
  it('refuse a relative import that leaves its package, also from the root folders', () => {
    expect(
      violationsOf({
        'services/gateway/src/a.ts': [
          "import { x } from '../../../shared/src/x.js';",
          "import { y } from './y.js';",
        ],
        'e2e/harness.ts': [
          "import { z } from '../services/gateway/src/z.js';",
          "import { w } from './w.js';",
        ],
      }),
    ).toEqual([
      'services/gateway/src/a.ts: relative import leaves its package: ../../../shared/src/x.js',
      'e2e/harness.ts: relative import leaves its package: ../services/gateway/src/z.js',
    ]);
  });

  it('let production code use only dependencies, tests also devDependencies', () => {
    expect(
      violationsOf({
        'shared/src/db.ts': [
          "import pg from 'pg';",
          "import { it } from 'vitest';",
          "import type { Redis } from 'ioredis';",
        ],
        'shared/src/db.int.test.ts': [
          "import { it } from 'vitest';",
          "import { migrateUp } from '@vantageedge/migrations/runner';",
        ],
        'shared/src/testing/postgres.ts': [
          "import { migrateUp } from '@vantageedge/migrations/runner';",
          "import fs from 'node:fs';",
        ],
      }),
    ).toEqual([
      'shared/src/db.ts: undeclared dependency: vitest',
      'shared/src/db.ts: undeclared dependency: ioredis',
    ]);
  });

  it('refuse edges the architecture does not allow, even when declared', () => {
    const files = {
      'services/gateway/src/stage.ts': ["import { fold } from '@vantageedge/projections/snapshots/fold';"],
      'services/gateway/src/pipeline.e2e.test.ts': [
        "import { startSnapshotProjector } from '@vantageedge/projections/snapshots/snapshot-projector';",
      ],
    };
    expect(violationsOf(files)).toEqual([
      'services/gateway/src/stage.ts: undeclared dependency: @vantageedge/projections/snapshots/fold',
    ]);
    const declared = PACKAGES.map((p) =>
      p.name === '@vantageedge/gateway'
        ? { ...p, dependencies: new Set([...p.dependencies, '@vantageedge/projections']) }
        : p,
    );
    expect(violationsOf(files, declared)).toEqual([
      'services/gateway/package.json: declared dependency not allowed: @vantageedge/projections',
      'services/gateway/src/stage.ts: edge not allowed: @vantageedge/projections/snapshots/fold',
    ]);
  });

  it('let the control plane use only the query contracts projections publishes, and no gateway code', () => {
    expect(
      violationsOf({
        'services/control-plane/src/queries/min-position.ts': [
          "import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';",
          "import { readCheckpoint } from '@vantageedge/projections/runner/checkpoint';",
        ],
        'services/control-plane/src/rollout/rollout.int.test.ts': [
          "import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';",
          "import { startRolloutHeartbeat } from '@vantageedge/gateway/config-plane/rollout-heartbeat';",
        ],
      }),
    ).toEqual([
      'services/control-plane/src/queries/min-position.ts: entry point not published: @vantageedge/projections/runner/checkpoint',
      'services/control-plane/src/rollout/rollout.int.test.ts: forbidden edge: @vantageedge/gateway/config-plane/rollout-heartbeat',
    ]);
  });

  it('let the console (.tsx included) use only the schemas, and vite only in its build configuration', () => {
    expect(
      violationsOf({
        'services/console/src/pages/route-editor.tsx': [
          "import { createRouteBody } from '@vantageedge/control-plane/schemas/requests';",
          "import { AUTH_MODES } from '@vantageedge/shared/domain/gateway-config';",
          "import { useState } from 'preact/hooks';",
          "import { createLogger } from '@vantageedge/shared/observability/logger';",
        ],
        'services/console/src/api/client.ts': [
          "import { handleCommand } from '@vantageedge/control-plane/commands/handle-command';",
          "import { defineConfig } from 'vite';",
        ],
        'services/console/vite.config.ts': ["import { defineConfig } from 'vite';"],
      }),
    ).toEqual([
      'services/console/src/pages/route-editor.tsx: entry point not published: @vantageedge/shared/observability/logger',
      'services/console/src/api/client.ts: entry point not published: @vantageedge/control-plane/commands/handle-command',
      'services/console/src/api/client.ts: undeclared dependency: vite',
    ]);
  });

  it('let the root folders use every package and their declared tools', () => {
    expect(
      violationsOf({
        'bench/run.ts': [
          "import { startGatewayReplica } from '@vantageedge/gateway/start-gateway-replica';",
          "import { migrateUp } from '@vantageedge/migrations/runner';",
          "import pg from 'pg';",
          "import { parse } from 'yaml';",
        ],
      }),
    ).toEqual(['bench/run.ts: undeclared dependency: yaml']);
  });

  it('name a dependency only tests, test helpers or benchmarks import', () => {
    const packages = [
      pkg('@vantageedge/gateway', 'services/gateway', ['@vantageedge/shared', 'undici', 'jose', 'pg']),
      pkg('@vantageedge/shared', 'shared', ['pg']),
    ];
    const files = {
      'services/gateway/src/proxy.ts': ["import { Pool } from 'undici';", "import type { JWK } from 'jose';"],
      'services/gateway/src/main.ts': ["import { loadSettings } from '@vantageedge/shared/settings';"],
      'services/gateway/src/proxy.unit.test.ts': ["import pg from 'pg';"],
      'services/gateway/src/bench/proxy-bench.ts': ["import pg from 'pg';"],
      'shared/src/db.ts': ["import pg from 'pg';"],
    };
    const workspace: Workspace = {
      root: '/nowhere',
      packages,
      files: Object.entries(files).map(([filePath, lines]) => ({
        path: filePath,
        packageName: owningPackage(packages, filePath).name,
        role: roleOf(filePath),
        imports: importsOf(lines.join('\n')),
      })),
    };
    expect(unusedDependencies(workspace).map(key)).toEqual([
      'services/gateway/package.json: dependency only tests use: pg',
    ]);
  });

  it('name a package the rules do not know', () => {
    expect(violationsOf({}, [...PACKAGES, pkg('@vantageedge/billing', 'billing', [])])).toEqual([
      'billing/package.json: package without rules: @vantageedge/billing',
    ]);
  });
});
