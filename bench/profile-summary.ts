import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Summarises a V8 .cpuprofile (BENCH_CPU_PROF in bench/run.ts, or node --cpu-prof): top functions by self time and self time by area
 * (our code by folder, npm packages by name, Node internals, GC/idle). Markdown on stdout.
 * Usage: tsx bench/profile-summary.ts [file.cpuprofile]  (default: newest in bench-results/profiles/)
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function newestProfile(): string {
  const dir = path.join(repo, 'bench-results', 'profiles');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!files[0]) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0];
}

export function area(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)' || functionName === '(program)') return functionName;
  if (url === '') return '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm: ${pkg[1]}`;
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const local = url.replace(/^file:\/\//, '');
  if (local.startsWith(repo)) {
    const rel = path.relative(repo, local).split('/');
    return rel.slice(0, Math.min(rel.length - 1, 4)).join('/');
  }
  return url;
}

export function summarizeProfile(profile: CpuProfile, top = 20): string {
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const idleIds = new Set(
    profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id),
  );
  const sampled = [...selfUs.values()].reduce((a, b) => a + b, 0);
  // Percentages of busy time: the gateway idles while the harness measures nginx.
  const total = [...selfUs.entries()].filter(([id]) => !idleIds.has(id)).reduce((a, [, us]) => a + us, 0);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0 || idleIds.has(node.id)) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(`file://${repo}/`, '')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'} ${where}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const a = area(url, functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1)}%`;
  const rows = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => `| ${pct(us)} | ${(us / 1000).toFixed(0)} | \`${name}\` |`);
  return [
    `Profile: ${(sampled / 1e6).toFixed(1)} s sampled, ${(total / 1e6).toFixed(1)} s busy (percentages of busy time)`,
    '',
    '| self % | self ms | area |',
    '|---:|---:|---|',
    ...rows(byArea),
    '',
    '| self % | self ms | function |',
    '|---:|---:|---|',
    ...rows(byFunction),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2] ?? newestProfile();
  process.stdout.write(
    `${file}\n\n${summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)}\n`,
  );
}
