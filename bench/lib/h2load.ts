import { execFile } from 'node:child_process';

/**
 * h2load (Debian's nghttp2-client): the load generator for HTTP/2, which wrk cannot speak. The same
 * tool runs the HTTP/1.1 side (`--h1`), so the h2-versus-h1 ratio compares protocols, not tools.
 */
export interface H2loadResult {
  protocol: 'h2' | 'http/1.1';
  requests: number;
  succeeded: number;
  failed: number;
  rps: number;
  meanMs: number;
  maxMs: number;
}

export interface H2loadOptions {
  url: string;
  /** The tenant host (sent as :authority, and as Host with --h1). */
  authority: string;
  h1: boolean;
  requests: number;
  clients: number;
  /** Concurrent streams per client (h2); pipelining is off for --h1. */
  streams: number;
  /** taskset CPU list for h2load (the load generator's cores). */
  cpus: string;
}

export function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const args = [
    '-c',
    options.cpus,
    'h2load',
    '-n',
    String(options.requests),
    '-c',
    String(options.clients),
    '-m',
    String(options.h1 ? 1 : options.streams),
    '-H',
    `:authority: ${options.authority}`,
    ...(options.h1 ? ['--h1'] : []),
    options.url,
  ];
  return new Promise((resolve, reject) => {
    execFile('taskset', args, { maxBuffer: 4 * 1024 * 1024 }, (error, stdout) => {
      if (error) return reject(new Error(`h2load failed: ${error.message}\n${stdout}`));
      resolve(parseH2load(stdout, options.h1 ? 'http/1.1' : 'h2'));
    });
  });
}

/** Reads h2load's summary ("finished in …, N req/s", "requests: …", "time for request: …"). */
export function parseH2load(output: string, protocol: H2loadResult['protocol']): H2loadResult {
  const number = (pattern: RegExp): number => Number(pattern.exec(output)?.[1] ?? Number.NaN);
  const toMs = (value: string | undefined, unit: string | undefined): number => {
    const n = Number(value);
    if (unit === 'us') return n / 1000;
    if (unit === 's') return n * 1000;
    return n;
  };
  const timing = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(output);
  return {
    protocol,
    requests: number(/requests: (\d+) total/),
    succeeded: number(/(\d+) succeeded/),
    failed: number(/(\d+) failed/),
    rps: number(/finished in [\d.]+\w+, ([\d.]+) req\/s/),
    meanMs: toMs(timing?.[5], timing?.[6]),
    maxMs: toMs(timing?.[3], timing?.[4]),
  };
}
