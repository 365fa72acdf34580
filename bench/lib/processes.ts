import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

/**
 * CPU placement: with ≥2 cores the proxy under test gets core 0 and the load generator and origin
 * share the rest, so the proxy is measured on one core. With 1 core nothing is pinned (reported).
 */
export interface CpuPlan {
  pinned: boolean;
  proxyCpus: string;
  loadCpus: string;
  note: string;
}

export function planCpus(): CpuPlan {
  const cores = os.availableParallelism();
  let haveTaskset = true;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    haveTaskset = false;
  }
  if (cores >= 2 && haveTaskset) {
    return {
      pinned: true,
      proxyCpus: '0',
      loadCpus: cores === 2 ? '1' : `1-${cores - 1}`,
      note: `proxy pinned to CPU 0; load generator and origin on CPU ${cores === 2 ? '1' : `1-${cores - 1}`}`,
    };
  }
  return {
    pinned: false,
    proxyCpus: '',
    loadCpus: '',
    note:
      cores < 2
        ? 'one core: nothing pinned, proxy and load generator share it'
        : 'taskset missing: nothing pinned',
  };
}

export function pinnedCommand(cpus: string, command: string, args: string[]): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, command, ...args]] : [command, args];
}

export function startProcess(
  cpus: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  /** File descriptor for the child's stdout (e.g. a log file); default: a pipe that is drained. */
  stdoutFd?: number,
): ChildProcess {
  const [cmd, argv] = pinnedCommand(cpus, command, args);
  const child = spawn(cmd, argv, { env, stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
  child.stdout?.resume();
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0) process.stderr.write(`[bench] ${command} exited ${code ?? signal}: ${stderr}\n`);
  });
  return child;
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function waitForHttp(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { headers });
      await response.arrayBuffer();
      if (response.status < 500) return;
      lastError = `status ${response.status}`;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${lastError})`);
}

/** CPU time (user+sys, seconds) and RSS (bytes) of a process, from /proc. */
export function processUsage(pid: number): { cpuSeconds: number; rssBytes: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { cpuSeconds: ticks / 100, rssBytes: rssPages * 4096 };
  } catch {
    return undefined;
  }
}

/**
 * CPU time of every thread of a process so far, in ns: the first field of each thread's
 * /proc/<pid>/task/<tid>/schedstat. /proc/<pid>/stat counts in 10 ms ticks, 1% of a 1 s run.
 */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return total;
}

/** The first child of a process (nginx's worker under its master), from /proc. */
export function firstChildPid(pid: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    const first = Number(children[0]);
    return Number.isInteger(first) && first > 0 ? first : undefined;
  } catch {
    return undefined;
  }
}
