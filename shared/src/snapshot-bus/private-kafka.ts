import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../testing/free-ports.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface PrivateKafka {
  brokers: string[];
  start(): Promise<void>;
  /** Stops the broker (TERM, then KILL); its data stays, so start() brings the same topics back. */
  stop(): Promise<void>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

/**
 * A Kafka broker of our own for fault tests (stopping the shared one would break everyone's tests):
 * infra/kafka.sh with its own data folder and free ports. The broker jars of the shared install
 * (.data/kafka/lib-<version>) are linked in, so nothing is downloaded.
 */
export async function createPrivateKafka(): Promise<PrivateKafka> {
  const data = await mkdtemp(path.join(tmpdir(), 've-private-kafka-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const saslSslPort = await freePort();
  const shared = path.join(process.env['VE_DATA'] ?? path.join(ROOT, '.data'), 'kafka');
  await mkdir(path.join(data, 'kafka'), { recursive: true });
  const { stdout } = await run('bash', ['-c', `ls -d ${JSON.stringify(shared)}/lib-* | head -n1`]);
  const lib = stdout.trim();
  if (lib) await symlink(lib, path.join(data, 'kafka', path.basename(lib)));
  const env = {
    ...process.env,
    VE_DATA: data,
    VE_KAFKA_PORT: String(port),
    VE_KAFKA_CONTROLLER_PORT: String(controllerPort),
    VE_KAFKA_SASL_SSL_PORT: String(saslSslPort),
  };
  const script = path.join(ROOT, 'infra/kafka.sh');
  const kafka = (action: string) => run('bash', [script, action], { env, timeout: 180_000 });
  return {
    brokers: [`127.0.0.1:${port}`],
    start: async () => {
      await kafka('up');
    },
    stop: async () => {
      await kafka('down');
    },
    destroy: async () => {
      await kafka('down').catch(() => {});
      await rm(data, { recursive: true, force: true });
    },
  };
}
