import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from './processes.js';

const REPORT_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wrk-report.lua');

export interface LoadResult {
  rps: number;
  requests: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  errors: number;
  non2xx: number;
}

export interface LoadOptions {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  durationSeconds: number;
  cpus: string;
  /** Fixed-rate mode: each connection waits this long after every response (approximate pacing). */
  delayMs?: number;
  /** Cycle the requests over this many distinct URLs (`?v=0…N-1`); 0 or unset: one URL. */
  pathVariants?: number;
}

export function runWrk(options: LoadOptions): Promise<LoadResult> {
  const args = [
    '-t1',
    `-c${options.connections}`,
    `-d${options.durationSeconds}s`,
    '--timeout',
    '5s',
    '-s',
    REPORT_SCRIPT,
    ...Object.entries(options.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    options.url,
  ];
  const [command, argv] = pinnedCommand(options.cpus, 'wrk', args);
  return new Promise((resolve, reject) => {
    execFile(
      command,
      argv,
      {
        env: {
          ...process.env,
          WRK_DELAY_MS: String(options.delayMs ?? 0),
          WRK_PATH_VARIANTS: String(options.pathVariants ?? 0),
        },
        maxBuffer: 1 << 20,
      },
      (error, stdout) => {
        if (error) return reject(error);
        try {
          resolve(parseWrkOutput(stdout));
        } catch (parseError) {
          reject(parseError);
        }
      },
    );
  });
}

/** The WRK_JSON line printed by wrk-report.lua → rps, latency percentiles (ms), errors, non-2xx. */
export function parseWrkOutput(stdout: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no summary: ${stdout.slice(-500)}`);
  const raw = JSON.parse(line.slice('WRK_JSON '.length)) as {
    requests: number;
    duration_us: number;
    errors: Record<'connect' | 'read' | 'write' | 'status' | 'timeout', number>;
    latency_us: Record<'mean' | 'max' | 'p50' | 'p90' | 'p99' | 'p999', number>;
  };
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    rps: raw.requests / (raw.duration_us / 1e6),
    requests: raw.requests,
    latencyMs: {
      p50: ms(raw.latency_us.p50),
      p90: ms(raw.latency_us.p90),
      p99: ms(raw.latency_us.p99),
      p999: ms(raw.latency_us.p999),
      max: ms(raw.latency_us.max),
      mean: ms(raw.latency_us.mean),
    },
    errors: raw.errors.connect + raw.errors.read + raw.errors.write + raw.errors.timeout,
    non2xx: raw.errors.status,
  };
}
