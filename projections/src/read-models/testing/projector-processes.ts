import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** A projector's real process: its stdout read line by line (a log line each), its stderr the test's. */
export interface ProjectorProcess {
  child: ChildProcess;
  lines: readline.Interface;
}

/** The projector processes a test file starts; `killAll` (for afterAll) SIGKILLs those still running. */
export class ProjectorProcesses {
  readonly #running = new Set<ChildProcess>();

  /** Runs a projector's entry point (`main`, from the repository root, as make run-… does) with `env`. */
  start(main: string, env: Record<string, string>): ProjectorProcess {
    // node itself (not the tsx CLI, which runs the program in a child process that a SIGKILL of the CLI
    // would orphan): the run's bundle of `main`, else the source through tsx's loader.
    const child = spawn(process.execPath, serviceNodeArgs(main), {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#running.add(child);
    child.once('exit', () => this.#running.delete(child));
    return { child, lines: readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }) };
  }

  killAll(): void {
    for (const child of this.#running) child.kill('SIGKILL');
  }
}

/** Resolves with the process's exit code (null when a signal ended it) once it has exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
}
