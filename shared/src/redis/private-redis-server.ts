import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { freePort } from '../testing/free-ports.js';

/**
 * A private `redis-server` child process for fault tests: they kill and restart it without touching the
 * shared server. Test-only.
 */
export interface PrivateRedisServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** PEM files of a TLS-only server: it listens on TLS alone (`--port 0`) and its URL is rediss://. */
export interface PrivateRedisTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** `args`: more redis-server options, e.g. `['--maxmemory', '8mb', '--maxmemory-policy', 'volatile-lru']`. */
export async function startPrivateRedisServer(
  args: readonly string[] = [],
  { tls }: { tls?: PrivateRedisTls | undefined } = {},
): Promise<PrivateRedisServer> {
  const port = await freePort();
  // A cluster node also listens on its bus port, by default port + 10000: in the kernel's ephemeral range
  // for most picks, where an outgoing connection or another listen(0) may hold it and the node exits.
  // Its own pick, as freePort picks, keeps it below that range.
  const busPortArgs = args.includes('--cluster-enabled') ? ['--cluster-port', String(await freePort())] : [];
  const listen = tls
    ? [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        tls.certFile,
        '--tls-key-file',
        tls.keyFile,
        '--tls-ca-cert-file',
        tls.caFile,
        '--tls-auth-clients',
        'no',
      ]
    : ['--port', String(port)];
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      [
        ...listen,
        ...busPortArgs,
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        ...args,
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port, 5_000);
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
  };
  await start();
  return { port, url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`, start, stop };
}
