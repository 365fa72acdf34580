/**
 * bench-websocket-frames: the CPU the gateway spends per MB of WebSocket frames, for masked binary frames
 * of 2, 6, 125, 1,024 and 65,536 payload bytes (a client flooding tiny frames is the costly case).
 *
 * 1. The frame tracker alone (FrameBoundaries, as FrameRelay feeds it): a stream of frames in the 64 KiB
 *    pieces a socket's reads hand over, CPU µs per MB, median of BENCH_FRAMES_ROUNDS rounds.
 * 2. A real gateway process (services/gateway/src/bench/gateway-process.ts) between a `ws` client and an
 *    origin that reads and drops what it gets: the client sends BENCH_FRAMES_GATEWAY_MB of frames, and the
 *    CPU of the gateway process's main thread (its event loop, from /proc) per MB is measured, median of
 *    the rounds.
 *
 * BENCH_BASELINE_REV=<git revision> measures that revision's gateway source too (extracted to a temporary
 * directory), interleaved with the working tree's round by round, and prints the ratio
 * baseline / current for each size. Writes bench-results/websocket-frames-<timestamp>.json.
 *
 * Run: make bench-websocket-frames [BENCH_BASELINE_REV=main]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, writeBenchResult } from '@vantageedge/shared/testing/bench-results';
import WebSocket from 'ws';

const PAYLOAD_SIZES = [2, 6, 125, 1024, 65_536];
const ROUNDS = Number(process.env['BENCH_FRAMES_ROUNDS'] ?? 5);
const TRACKER_MB = Number(process.env['BENCH_FRAMES_TRACKER_MB'] ?? 16);
const GATEWAY_MB = Number(process.env['BENCH_FRAMES_GATEWAY_MB'] ?? 32);
const SOCKET_READ_BYTES = 64 * 1024;
const BASELINE_REV = process.env['BENCH_BASELINE_REV'];
const GATEWAY_SRC = path.join(REPO_ROOT, 'services/gateway/src');

interface FrameTracker {
  observe(chunk: Buffer): void;
  readonly atBoundary: boolean;
}
type FrameTrackerClass = new () => FrameTracker;

interface Side {
  name: 'current' | 'baseline';
  src: string;
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const round = (value: number) => Math.round(value * 10) / 10;

/** About `bytes` of masked binary frames of `payload` bytes each, as a client sends them (RFC 6455 §5.2). */
function maskedFrames(payload: number, bytes: number): Buffer {
  const lengthBytes = payload < 126 ? 0 : payload < 65_536 ? 2 : 8;
  const one = Buffer.alloc(2 + lengthBytes + 4 + payload);
  one[0] = 0x82;
  one[1] = 0x80 | (lengthBytes === 0 ? payload : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) one.writeUInt16BE(payload, 2);
  if (lengthBytes === 8) one.writeBigUInt64BE(BigInt(payload), 2);
  const mask = randomBytes(4);
  mask.copy(one, 2 + lengthBytes);
  for (let i = 0; i < payload; i++) one[2 + lengthBytes + 4 + i] = 0x70 ^ (mask[i % 4] as number);
  const count = Math.max(1, Math.round(bytes / one.length));
  const stream = Buffer.allocUnsafe(one.length * count);
  for (let at = 0; at < stream.length; at += one.length) one.copy(stream, at);
  return stream;
}

function pieces(stream: Buffer, size: number): Buffer[] {
  const all: Buffer[] = [];
  for (let at = 0; at < stream.length; at += size) all.push(stream.subarray(at, at + size));
  return all;
}

/**
 * The working tree's gateway source, and `rev`'s when asked for: extracted outside the repository (no test
 * runner or type check sees it), its packages resolved through a link to the repository's node_modules.
 */
function sides(): Side[] {
  const all: Side[] = [{ name: 'current', src: GATEWAY_SRC }];
  if (BASELINE_REV === undefined) return all;
  const dir = mkdtempSync(path.join(tmpdir(), 'websocket-frames-baseline-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const sources = ['package.json', 'services/gateway/package.json', 'services/gateway/src'];
  const archive = execFileSync('git', ['-C', REPO_ROOT, 'archive', BASELINE_REV, ...sources], {
    maxBuffer: 1 << 30,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  all.push({ name: 'baseline', src: path.join(dir, 'services/gateway/src') });
  return all;
}

async function trackerOf(side: Side): Promise<FrameTrackerClass> {
  const module = (await import(pathToFileURL(path.join(side.src, 'websocket/frame-boundaries.ts')).href)) as {
    FrameBoundaries: FrameTrackerClass;
  };
  return module.FrameBoundaries;
}

/** CPU µs per MB of `passes` passes of a new tracker over `chunks`. */
function trackerPass(Tracker: FrameTrackerClass, chunks: Buffer[], bytes: number, passes: number): number {
  const started = process.cpuUsage();
  for (let pass = 0; pass < passes; pass++) {
    const tracker = new Tracker();
    for (const chunk of chunks) tracker.observe(chunk);
    if (!tracker.atBoundary) throw new Error('the tracker lost the frame boundaries');
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / ((passes * bytes) / 1e6);
}

async function trackerAlone(all: Side[]): Promise<Record<string, Record<string, number>>> {
  const trackers = await Promise.all(all.map(trackerOf));
  const results: Record<string, Record<string, number>> = {};
  for (const payload of PAYLOAD_SIZES) {
    const stream = maskedFrames(payload, TRACKER_MB * 1e6);
    const chunks = pieces(stream, SOCKET_READ_BYTES);
    // Larger frames cost little per MB: more passes, for a sample well above the clock's grain.
    const passes = Math.max(1, Math.round(Math.sqrt(payload)));
    for (const Tracker of trackers) trackerPass(Tracker, chunks, stream.length, passes);
    const samples = all.map(() => [] as number[]);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, Tracker] of trackers.entries()) {
        samples[i]?.push(trackerPass(Tracker, chunks, stream.length, passes));
      }
    }
    results[payload] = Object.fromEntries(all.map((side, i) => [side.name, round(median(samples[i] ?? []))]));
  }
  return results;
}

/** An origin that switches every upgrade to a WebSocket and drops what it then receives. */
async function startSinkOrigin() {
  const server = createServer((_req, res) => res.writeHead(404).end());
  let received = 0;
  server.on('upgrade', (req, socket: Socket) => {
    const accept = createHash('sha1')
      .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => received,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function startGatewayProcess(
  side: Side,
  originUrl: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(side.src, 'bench/gateway-process.ts')],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, BENCH_ORIGIN_URL: originUrl },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) =>
      resolve((JSON.parse(line) as { port: number }).port),
    );
    child.once('exit', (code) => reject(new Error(`the ${side.name} gateway exited (${code})`)));
  });
  return { child, port };
}

/** The CPU seconds a process's main thread (its event loop) has run, from /proc (nanoseconds there). */
function eventLoopCpuSecondsOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
}

/**
 * Sends `stream` over a WebSocket opened with a `ws` client, in pieces as fast as the connection takes
 * them, and waits until the origin received all of it; the gateway's CPU µs per MB meanwhile.
 */
async function gatewayPass(
  gateway: { child: ChildProcess; port: number },
  origin: Awaited<ReturnType<typeof startSinkOrigin>>,
  chunks: Buffer[],
  bytes: number,
): Promise<number> {
  const client = new WebSocket(`ws://127.0.0.1:${gateway.port}/public/frames`, {
    headers: { host: 'bench.localhost' },
  });
  // The upgraded socket, as ws opens the connection (in the same turn: 'open' follows 'upgrade' at once).
  const socket = await new Promise<Socket>((resolve, reject) => {
    let upgraded: Socket | undefined;
    client.once('upgrade', (response) => {
      upgraded = response.socket as Socket;
    });
    client.once('open', () => (upgraded ? resolve(upgraded) : reject(new Error('no upgraded socket'))));
    client.once('error', reject);
  });
  const expected = origin.received() + bytes;
  const pid = gateway.child.pid as number;
  const started = eventLoopCpuSecondsOf(pid);
  // The frames are written as prepared (a flooding client's pace), not one send() each.
  for (const chunk of chunks) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  while (origin.received() < expected) await new Promise((resolve) => setTimeout(resolve, 5));
  const used = eventLoopCpuSecondsOf(pid) - started;
  client.terminate();
  return (used * 1e6) / (bytes / 1e6);
}

async function throughGateway(all: Side[]): Promise<Record<string, Record<string, number>>> {
  const origin = await startSinkOrigin();
  const gateways = await Promise.all(all.map((side) => startGatewayProcess(side, origin.url)));
  const results: Record<string, Record<string, number>> = {};
  try {
    for (const payload of PAYLOAD_SIZES) {
      const stream = maskedFrames(payload, GATEWAY_MB * 1e6);
      const chunks = pieces(stream, SOCKET_READ_BYTES);
      for (const gateway of gateways)
        await gatewayPass(gateway, origin, chunks.slice(0, 16), 16 * SOCKET_READ_BYTES);
      const samples = all.map(() => [] as number[]);
      for (let r = 0; r < ROUNDS; r++) {
        for (const [i, gateway] of gateways.entries()) {
          samples[i]?.push(await gatewayPass(gateway, origin, chunks, stream.length));
        }
      }
      results[payload] = Object.fromEntries(
        all.map((side, i) => [side.name, round(median(samples[i] ?? []))]),
      );
    }
  } finally {
    for (const { child } of gateways) child.kill('SIGTERM');
    origin.close();
  }
  return results;
}

function table(title: string, results: Record<string, Record<string, number>>): string {
  const lines = [`${title} (CPU µs per MB; ratio = baseline / current)`];
  for (const [payload, bySide] of Object.entries(results)) {
    const ratio =
      bySide['baseline'] !== undefined
        ? ` ratio ${(bySide['baseline'] / (bySide['current'] ?? 1)).toFixed(2)}`
        : '';
    const baseline = bySide['baseline'] !== undefined ? ` baseline ${bySide['baseline']}` : '';
    lines.push(`  payload ${String(payload).padStart(6)} B: current ${bySide['current']}${baseline}${ratio}`);
  }
  return lines.join('\n');
}

const all = sides();
const at = new Date().toISOString();
const tracker = await trackerAlone(all);
console.log(table('frame tracker alone', tracker));
const gateway = await throughGateway(all);
console.log(table('gateway process, ws client to a sink origin', gateway));
const file = await writeBenchResult('websocket-frames', at, {
  at,
  baselineRev: BASELINE_REV ?? null,
  rounds: ROUNDS,
  trackerMb: TRACKER_MB,
  gatewayMb: GATEWAY_MB,
  trackerAlone: tracker,
  throughGateway: gateway,
});
console.log(`written ${file}`);
process.exit(0);
