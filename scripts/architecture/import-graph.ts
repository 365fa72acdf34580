import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * What the dependency rules are checked against: the workspace packages with what their package.json
 * declares, and every TypeScript file with the package it belongs to and the specifiers it imports.
 */

export interface WorkspacePackage {
  /** `@vantageedge/gateway`; the root package (bench, e2e, scripts, infra) is `vantageedge`. */
  name: string;
  /** Folder relative to the repository root, `/`-separated; '' for the root package. */
  dir: string;
  dependencies: ReadonlySet<string>;
  devDependencies: ReadonlySet<string>;
}

/** Production code, or code that only tests and benchmarks run (it may use devDependencies). */
export type FileRole = 'production' | 'test';

export interface SourceFile {
  /** Relative to the repository root, `/`-separated. */
  path: string;
  packageName: string;
  role: FileRole;
  /** Every module specifier: static and dynamic imports, `export … from`, type-only imports. */
  imports: readonly string[];
}

export interface Workspace {
  root: string;
  packages: readonly WorkspacePackage[];
  files: readonly SourceFile[];
}

const SKIPPED_FOLDERS = new Set(['node_modules', '.data', '.git', 'bench-results', 'coverage', 'dist']);

/**
 * Test files by name (`*.test.ts`, contract suites), test helpers (`testing.ts`, `testing/`),
 * benchmarks (`bench/`) and build configuration (`vite.config.ts`): the code a package's
 * devDependencies are for.
 */
export function roleOf(filePath: string): FileRole {
  const segments = filePath.split('/');
  const base = segments.at(-1) ?? '';
  if (/\.test\.tsx?$/.test(base) || /(^|\.)contract\.ts$/.test(base) || base === 'testing.ts') return 'test';
  if (/\.config\.ts$/.test(base)) return 'test';
  if (segments.includes('testing') || segments.includes('bench')) return 'test';
  return 'production';
}

export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
export function packageOfSpecifier(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

export function readWorkspace(root: string): Workspace {
  const rootManifest = readManifest(root);
  const workspaceDirs = (rootManifest.workspaces ?? []).flatMap((pattern) => expandWorkspace(root, pattern));
  const packages: WorkspacePackage[] = [
    toPackage(rootManifest, ''),
    ...workspaceDirs.map((dir) => toPackage(readManifest(path.join(root, dir)), dir)),
  ];
  const files = listTypeScriptFiles(root, '').map((filePath): SourceFile => {
    const owner = owningPackage(packages, filePath);
    return {
      path: filePath,
      packageName: owner.name,
      role: roleOf(filePath),
      imports: importsOf(readFileSync(path.join(root, filePath), 'utf8')),
    };
  });
  return { root, packages, files };
}

/** The package whose folder holds the file: the deepest workspace folder, else the root package. */
export function owningPackage(packages: readonly WorkspacePackage[], filePath: string): WorkspacePackage {
  let owner: WorkspacePackage | undefined;
  for (const pkg of packages) {
    const inside = pkg.dir === '' || filePath.startsWith(`${pkg.dir}/`);
    if (inside && (!owner || pkg.dir.length > owner.dir.length)) owner = pkg;
  }
  if (!owner) throw new Error(`no package holds ${filePath}`);
  return owner;
}

interface Manifest {
  name?: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

function toPackage(manifest: Manifest, dir: string): WorkspacePackage {
  if (!manifest.name) throw new Error(`package.json in ${dir || 'the root'} has no name`);
  return {
    name: manifest.name,
    dir,
    dependencies: new Set(Object.keys(manifest.dependencies ?? {})),
    devDependencies: new Set(Object.keys(manifest.devDependencies ?? {})),
  };
}

/** `shared` → [shared]; `services/*` → every folder of services/ that has a package.json. */
function expandWorkspace(root: string, pattern: string): string[] {
  if (!pattern.endsWith('/*')) return [pattern];
  const parent = pattern.slice(0, -2);
  return readdirSync(path.join(root, parent), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => `${parent}/${entry.name}`)
    .filter((dir) => readdirSync(path.join(root, dir)).includes('package.json'))
    .sort();
}

function listTypeScriptFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    if (SKIPPED_FOLDERS.has(entry.name)) continue;
    const relative = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listTypeScriptFiles(root, relative));
    else if (entry.isFile() && /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
      out.push(relative);
  }
  return out.sort();
}
