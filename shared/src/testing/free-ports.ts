import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * A port for a service a test starts as its own process, picked below the kernel's ephemeral range: a
 * port there is never handed to an outgoing connection or to another listen(0) in the window between
 * this check and the service's own listen (a port from listen(0) could be, and the service then exits
 * EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  const [lowest, below] = TEST_PORT_RANGE;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = lowest + Math.floor(Math.random() * (below - lowest));
    if (await canListen(port)) return port;
  }
  return listenOnce(0);
}

/** `count` ports as freePort picks them, no two the same (each pick is checked, not reserved). */
export async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** [lowest, below): under the ephemeral range, above the well-known ports and the infra's 16xxx. */
const TEST_PORT_RANGE = ((): [number, number] => {
  let ephemeralLow = 32_768;
  try {
    ephemeralLow = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
  } catch {
    // not Linux: the common default
  }
  return ephemeralLow > 22_000 ? [20_000, ephemeralLow] : [ephemeralLow, 65_000];
})();

function canListen(port: number): Promise<boolean> {
  return listenOnce(port).then(
    () => true,
    () => false,
  );
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}
