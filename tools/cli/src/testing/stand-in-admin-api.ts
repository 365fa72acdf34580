import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CliIo, runCli } from '../cli.js';

/**
 * What the CLI's tests point it at: a stand-in admin API on a loopback port, answering what each test
 * scripts, and the CLI run against it with its output collected.
 */

const openStandIns: Server[] = [];

/** Serves `listener` on a free loopback port until `closeStandInAdminApis`; returns its URL. */
export async function serveStandInAdminApi(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  openStandIns.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes every stand-in served so far, with its connections (an afterEach hook of the test file). */
export function closeStandInAdminApis(): void {
  for (const server of openStandIns.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI against the admin API at `url` (no config file, nothing on stdin unless `io` says). */
export async function runCliAgainst(argv: string[], url: string, io: Partial<CliIo> = {}): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    stdin: async () => '',
    ...io,
    env: {
      VANTAGEEDGE_URL: url,
      VANTAGEEDGE_TOKEN: 'admin-token',
      VANTAGEEDGE_CONFIG: '/nonexistent/x.json',
      ...io.env,
    },
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}
