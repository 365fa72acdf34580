import { runCli } from './cli.js';
import { MAX_DOCUMENT_FILE_BYTES } from './document-file.js';
import { readStandardInput } from './standard-input.js';

/** The `vantageedge` executable: one command line in, its output and exit code out. */

/** 128 + SIGPIPE: what a shell reports for a program whose reader closed the pipe (`git log | head`). */
const EXIT_OUTPUT_CLOSED = 141;

// A reader that stops early (`| head`, a pager quit) closes standard output: the rest is not wanted,
// which is the reader's choice. Node ignores SIGPIPE, so without this each write after it is an
// unhandled EPIPE with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(EXIT_OUTPUT_CLOSED);
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  stdin: () => readStandardInput(process.stdin, MAX_DOCUMENT_FILE_BYTES),
});
