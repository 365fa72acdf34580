import { spawn } from 'node:child_process';
import net from 'node:net';

/** A TCP address where a connect never completes: SYNs to it are dropped, the caller stays in SYN-SENT. */
export interface StalledConnectTarget {
  url: string;
  close(): Promise<void>;
}

// Listens with a backlog of 1 and never accepts (its event loop is blocked), so the kernel's accept
// queue fills; it exits by itself once its parent (the test process) is gone.
const UNACCEPTING_LISTENER = `
const net = require('node:net');
const parent = process.ppid;
const server = net.createServer();
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  require('node:fs').writeSync(1, server.address().port + '\\n');
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (process.ppid === parent) Atomics.wait(cell, 0, 0, 500);
  process.exit(0);
});
`;

/**
 * A local target whose TCP connects hang, as a firewalled or unreachable host's do. Linux drops a SYN
 * when the listener's accept queue is full (tcp_conn_request), so: a listener that never accepts, its
 * queue filled with connections this helper keeps open. Filling stops at the first connect that does
 * not complete — that connect is the proof that later ones (the gateway's) hang too.
 */
export async function startStalledConnectTarget(): Promise<StalledConnectTarget> {
  const child = spawn(process.execPath, ['-e', UNACCEPTING_LISTENER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`unaccepting listener exited (${code})`)));
    child.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  const fillers: net.Socket[] = [];
  const close = async () => {
    for (const socket of fillers) socket.destroy();
    if (child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
  };
  for (let attempt = 0; attempt < 64; attempt++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    fillers.push(socket);
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!connected) return { url: `http://127.0.0.1:${port}`, close };
  }
  await close();
  throw new Error('could not fill the accept queue: connects to the listener keep completing');
}
