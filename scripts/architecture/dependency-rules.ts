import { isBuiltin } from 'node:module';
import path from 'node:path';
import {
  packageOfSpecifier,
  type SourceFile,
  type Workspace,
  type WorkspacePackage,
} from './import-graph.js';

/**
 * The allowed dependency directions between VantageEdge's packages (docs/architecture.md explains
 * them). The root package (bench, e2e, scripts, infra) may use every package.
 */

const SHARED = '@vantageedge/shared';
const MIGRATIONS = '@vantageedge/migrations';
const PROJECTIONS = '@vantageedge/projections';
const GATEWAY = '@vantageedge/gateway';
const CONTROL_PLANE = '@vantageedge/control-plane';
const DEV = '@vantageedge/dev';
const CONSOLE = '@vantageedge/console';
const CLI = '@vantageedge/cli';

/** Which workspace packages a package's production code may import. */
export const PRODUCTION_EDGES: Readonly<Record<string, readonly string[]>> = {
  [SHARED]: [],
  // The migration CLI reads its settings (DATABASE_URL) with shared's settings loading.
  [MIGRATIONS]: [SHARED],
  [PROJECTIONS]: [SHARED, MIGRATIONS],
  [GATEWAY]: [SHARED],
  [CONTROL_PLANE]: [SHARED, PROJECTIONS],
  // `make dev` composes the whole product in one process.
  [DEV]: [SHARED, MIGRATIONS, PROJECTIONS, GATEWAY, CONTROL_PLANE],
  // The web console (a browser app) validates forms with the admin API's own request schemas.
  [CONSOLE]: [CONTROL_PLANE, SHARED],
  // The CLI is an HTTP client of the admin API; it may share schemas, never server code.
  [CLI]: [SHARED],
};

/** Edges only tests, test helpers and benchmarks may take (declared as devDependencies). */
export const TEST_ONLY_EDGES: Readonly<Record<string, readonly string[]>> = {
  // A test database is a migrated database.
  [SHARED]: [MIGRATIONS],
  // The snapshot pipeline test and the propagation benchmark drive the real snapshot projector.
  [GATEWAY]: [PROJECTIONS],
};

/**
 * Where an edge is allowed only into part of the target: the entry points the target publishes for
 * that consumer. The control plane reads the read models and the snapshot state through their query
 * contracts, and starts a read-model replay (POST /api/v1/admin/replay); it never sees projector code.
 */
export const PUBLISHED_ENTRY_POINTS: ReadonlyArray<{
  from: string;
  to: string;
  entryPoints: readonly string[];
}> = [
  {
    from: CONTROL_PLANE,
    to: PROJECTIONS,
    entryPoints: [
      'read-models/schema',
      'read-models/position',
      'read-models/replay',
      'snapshots/snapshot-state',
      // Config at a past position folds the tenant's events with the snapshot projector's own fold.
      'snapshots/fold',
      // POST /api/v1/admin/republish-snapshots queues every snapshot for the snapshot projector.
      'snapshots/republish',
    ],
  },
  // The console runs in a browser: it sees the admin API's schemas and the config shapes, nothing
  // that reaches a server (its bundle would not even build).
  { from: CONSOLE, to: CONTROL_PLANE, entryPoints: ['schemas/requests', 'schemas/resources'] },
  // …and the one schema of the explain answer it reads (zod only, like the config shapes), with the
  // text its quota windows read as and how it shows tenant text's hidden characters (the CLI's too).
  {
    from: CONSOLE,
    to: SHARED,
    entryPoints: [
      'domain/gateway-config',
      'domain/request-explanation',
      'domain/quota-window-text',
      'domain/visible-text',
    ],
  },
];

/**
 * Packages whose code is never deployed: development tools (`make dev`) and the web console, which
 * ships as the static files Vite builds from it. Their code may use their devDependencies (embedded
 * PostgreSQL, autocannon; Preact, uPlot), which a production install (`npm ci --omit=dev`) leaves out.
 */
export const DEVELOPMENT_ONLY_PACKAGES: ReadonlySet<string> = new Set([DEV, CONSOLE]);

/** Build tools: only build configuration and tests import them, also in a development-only package. */
const BUILD_TOOLS: ReadonlySet<string> = new Set(['vite', 'esbuild']);

/** Packages no file of another package may import, tests included. */
export const FORBIDDEN_EDGES: ReadonlyArray<{ from: string; to: string; why: string }> = [
  {
    from: CONTROL_PLANE,
    to: GATEWAY,
    why: 'the control plane talks to gateways only through the event log, the snapshot bus and shared protocols',
  },
  ...[CONTROL_PLANE, GATEWAY, PROJECTIONS, MIGRATIONS].map((to) => ({
    from: CLI,
    to,
    why: 'the CLI talks to VantageEdge only through the admin API over HTTP',
  })),
];

export type RuleName =
  | 'relative import leaves its package'
  | 'undeclared dependency'
  | 'edge not allowed'
  | 'entry point not published'
  | 'forbidden edge'
  | 'declared dependency not allowed'
  | 'dependency only tests use'
  | 'package without rules';

export interface Violation {
  rule: RuleName;
  /** The importing file, or the package.json that declares the dependency. */
  file: string;
  /** The import specifier, or the declared package name. */
  specifier: string;
}

export function describeViolation(violation: Violation): string {
  return `${violation.file}: ${violation.rule}: ${violation.specifier}`;
}

export function findViolations(workspace: Workspace): Violation[] {
  const byName = new Map(workspace.packages.map((pkg) => [pkg.name, pkg]));
  const members = workspace.packages.filter((pkg) => pkg.dir !== '');
  const context: Context = { memberNames: new Set(members.map((pkg) => pkg.name)), members };
  const violations: Violation[] = members.flatMap((pkg) => declarationViolations(pkg, context));
  for (const file of workspace.files) {
    const pkg = byName.get(file.packageName);
    if (!pkg) throw new Error(`unknown package ${file.packageName}`);
    for (const specifier of file.imports) {
      const rule = importViolation(file, pkg, specifier, context);
      if (rule) violations.push({ rule, file: file.path, specifier });
    }
  }
  return violations;
}

/**
 * A workspace package's `dependencies` that none of its production files imports: a production install
 * (`npm ci --omit=dev`, or one workspace's) carries them for nothing. What only its tests, test helpers
 * or benchmarks use belongs in its devDependencies.
 */
export function unusedDependencies(workspace: Workspace): Violation[] {
  const imported = new Map<string, Set<string>>();
  for (const file of workspace.files) {
    if (file.role !== 'production') continue;
    const names = imported.get(file.packageName) ?? new Set<string>();
    for (const specifier of file.imports) names.add(packageOfSpecifier(specifier));
    imported.set(file.packageName, names);
  }
  return workspace.packages
    .filter((pkg) => pkg.dir !== '')
    .flatMap((pkg) =>
      [...pkg.dependencies]
        .filter((name) => !imported.get(pkg.name)?.has(name))
        .map(
          (name): Violation => ({
            rule: 'dependency only tests use',
            file: `${pkg.dir}/package.json`,
            specifier: name,
          }),
        ),
    );
}

interface Context {
  /** The workspace packages (the root package is not one of them). */
  members: readonly WorkspacePackage[];
  memberNames: ReadonlySet<string>;
}

function importViolation(
  file: SourceFile,
  pkg: WorkspacePackage,
  specifier: string,
  context: Context,
): RuleName | null {
  const isRoot = pkg.dir === '';
  if (specifier.startsWith('.')) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file.path), specifier));
    return leavesPackage(target, pkg, context) ? 'relative import leaves its package' : null;
  }
  if (isBuiltin(specifier)) return null;
  const target = packageOfSpecifier(specifier);
  if (FORBIDDEN_EDGES.some((edge) => edge.from === pkg.name && edge.to === target)) return 'forbidden edge';
  if (isRoot) {
    if (context.memberNames.has(target)) return null;
    return pkg.dependencies.has(target) || pkg.devDependencies.has(target) ? null : 'undeclared dependency';
  }
  const mayUseDevDependencies =
    file.role === 'test' || (DEVELOPMENT_ONLY_PACKAGES.has(pkg.name) && !BUILD_TOOLS.has(target));
  const declared = pkg.dependencies.has(target) || (mayUseDevDependencies && pkg.devDependencies.has(target));
  if (!declared) return 'undeclared dependency';
  if (!context.memberNames.has(target)) return null;
  const allowed =
    PRODUCTION_EDGES[pkg.name]?.includes(target) ||
    (file.role === 'test' && TEST_ONLY_EDGES[pkg.name]?.includes(target));
  if (!allowed) return 'edge not allowed';
  if (file.role === 'production') {
    const published = PUBLISHED_ENTRY_POINTS.find((entry) => entry.from === pkg.name && entry.to === target);
    const subpath = specifier.slice(target.length + 1);
    if (published && !published.entryPoints.includes(subpath)) return 'entry point not published';
  }
  return null;
}

/**
 * A workspace package's relative imports stay in its folder; the root package's stay out of every
 * workspace folder (bench, e2e, scripts and infra import packages by name).
 */
function leavesPackage(target: string, pkg: WorkspacePackage, context: Context): boolean {
  if (target === '..' || target.startsWith('../')) return true;
  const inside = (dir: string) => target === dir || target.startsWith(`${dir}/`);
  if (pkg.dir !== '') return !inside(pkg.dir);
  return context.members.some((member) => inside(member.dir));
}

/** Declared workspace dependencies must be allowed edges: package.json says what the code may do. */
function declarationViolations(pkg: WorkspacePackage, context: Context): Violation[] {
  const file = `${pkg.dir}/package.json`;
  const production = PRODUCTION_EDGES[pkg.name];
  if (!production) return [{ rule: 'package without rules', file, specifier: pkg.name }];
  const testOnly = TEST_ONLY_EDGES[pkg.name] ?? [];
  const out: Violation[] = [];
  for (const name of pkg.dependencies) {
    if (context.memberNames.has(name) && !production.includes(name)) {
      out.push({ rule: 'declared dependency not allowed', file, specifier: name });
    }
  }
  for (const name of pkg.devDependencies) {
    if (context.memberNames.has(name) && !production.includes(name) && !testOnly.includes(name)) {
      out.push({ rule: 'declared dependency not allowed', file, specifier: name });
    }
  }
  return out;
}
