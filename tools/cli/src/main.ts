import { runCli } from './cli.js';
import { MAX_DOCUMENT_FILE_BYTES } from './document-file.js';
import { readStandardInput } from './standard-input.js';

/** The `vantageedge` executable: one command line in, its output and exit code out. */

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  stdin: () => readStandardInput(process.stdin, MAX_DOCUMENT_FILE_BYTES),
});
