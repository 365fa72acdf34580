import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * `vantageedge schema | head`, or a pager quit early, closes the CLI's standard output while it still
 * writes: that is the reader's choice, not a failure, and node's unhandled EPIPE printed a stack trace.
 */
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/vantageedge.js');

describe('the CLI whose output is closed early', () => {
  it('stops without an error or a stack trace', async () => {
    // An admin API whose schema is far larger than a pipe's buffer, so the CLI writes on after the close.
    const schema = JSON.stringify({
      properties: Object.fromEntries(
        Array.from({ length: 20_000 }, (_, i) => [`field_${i}`, { type: 'string' }]),
      ),
    });
    const api = http.createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(schema),
    );
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const child = spawn(process.execPath, [BIN, 'schema'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        VANTAGEEDGE_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
        VANTAGEEDGE_TOKEN: 'token',
      },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    // Like `head -c 1`: read the first bytes, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
    );
    api.close();
    expect(stderr).toBe('');
    expect({ code, signal }).toEqual({ code: 141, signal: null });
  });
});
