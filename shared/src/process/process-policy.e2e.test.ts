import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The process policy in real processes (a stand-in service, testing/policy-fixture.ts): what a stray
 * rejection, an escaped exception, a signal and a hung drain do to the process and its exit code.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const children = new Set<ChildProcess>();

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

interface Fixture {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  waitFor(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startFixture(env: Record<string, string>): Fixture {
  const child = spawn(process.execPath, ['--import', 'tsx', 'shared/src/process/testing/policy-fixture.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ message: string; resolve: (line: Record<string, unknown>) => void }> = [];
  let buffer = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const text = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (line['message'] === waiter.message) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    lines,
    exit,
    waitFor(message, timeoutMs = 20_000) {
      const seen = lines.find((line) => line['message'] === message);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${message}" line; stdout: ${JSON.stringify(lines)} stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          message,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
  };
}

describe('process policy', () => {
  it('a stray promise rejection is logged with its stack and counted, and the process keeps serving', async () => {
    const fixture = startFixture({ FIXTURE_SCENARIO: 'reject' });
    const logged = await fixture.waitFor('unhandled promise rejection; still serving');
    expect(logged['error']).toBe('stray rejection');
    expect(String(logged['stack'])).toContain('policy-fixture.ts');
    const serving = await fixture.waitFor('still serving');
    expect(serving['rejections']).toBe(1);

    fixture.child.kill('SIGTERM');
    expect(await fixture.exit).toEqual({ code: 0, signal: null });
    expect(fixture.lines.map((line) => line['message'])).toEqual(
      expect.arrayContaining(['drain started', 'drain finished', 'stopped']),
    );
  });

  it('an uncaught exception is logged, the service drains, and the process exits non-zero', async () => {
    const fixture = startFixture({ FIXTURE_SCENARIO: 'throw' });
    const logged = await fixture.waitFor('uncaught exception; draining and exiting');
    expect(logged['error']).toBe('escaped exception');
    expect((await fixture.waitFor('drain started'))['reason']).toBe('fatal');
    expect(await fixture.exit).toEqual({ code: 1, signal: null });
    expect(fixture.lines.some((line) => line['message'] === 'drain finished')).toBe(true);
  });

  it('a drain that hangs is cut short at the deadline and the process still exits 0', async () => {
    const fixture = startFixture({ FIXTURE_DRAIN_MS: 'never', FIXTURE_DEADLINE_MS: '500' });
    await fixture.waitFor('fixture ready');
    fixture.child.kill('SIGTERM');
    expect(await fixture.exit).toEqual({ code: 0, signal: null });
    expect(
      fixture.lines.some((line) => String(line['message']).startsWith('shutdown deadline reached')),
    ).toBe(true);
  });

  it('a second signal while draining exits at once with code 1', async () => {
    const fixture = startFixture({ FIXTURE_DRAIN_MS: 'never', FIXTURE_DEADLINE_MS: '60000' });
    await fixture.waitFor('fixture ready');
    fixture.child.kill('SIGTERM');
    await fixture.waitFor('drain started');
    fixture.child.kill('SIGINT');
    expect(await fixture.exit).toEqual({ code: 1, signal: null });
  });
});
