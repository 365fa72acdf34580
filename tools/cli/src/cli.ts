import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_TIMEOUT_SECONDS } from './api-client.js';
import {
  type ApplyOptions,
  apply,
  diff,
  dump,
  history,
  type RollbackOptions,
  rollback,
  schema,
} from './commands/config.js';
import { type ExplainOptions, explain } from './commands/explain.js';
import { GET_RESOURCES, get } from './commands/get.js';
import { login, logout } from './commands/session.js';
import { type CliContext, createContext } from './context.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { FILE_VARIABLE_PREFIX } from './file-variables.js';
import type { LogEntriesOptions } from './log-entries.js';
import { OUTPUT_FORMATS, type OutputFormat, terminalText } from './output.js';

/**
 * `vantageedge`: the admin API from a terminal or a CI job. Every command talks to the control plane
 * over HTTP with the token `login` saved (or $VANTAGEEDGE_URL / $VANTAGEEDGE_TOKEN); exit codes are
 * in exit-codes.ts and the README.
 */

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
  /** Waits before the admin API is asked again (default: a timer); tests record the waits instead. */
  sleep?: (ms: number) => Promise<void>;
  /** The clock a Retry-After date is read against (default Date.now). */
  now?: () => number;
  /** The most the CLI reads of one answer (default MAX_ANSWER_BYTES); tests set less. */
  maxAnswerBytes?: number;
}

const MAX_TIMEOUT_SECONDS = 3600;

/** `--timeout` or $VANTAGEEDGE_TIMEOUT: seconds, more than 0 and at most an hour. */
function timeoutSeconds(flag: string | undefined, env: NodeJS.ProcessEnv): number {
  const text = flag ?? env['VANTAGEEDGE_TIMEOUT'] ?? '';
  if (text === '') return DEFAULT_TIMEOUT_SECONDS;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds <= 0 || seconds > MAX_TIMEOUT_SECONDS) {
    throw new CliError(
      EXIT.usage,
      `--timeout (or $VANTAGEEDGE_TIMEOUT) must be a number of seconds above 0 and at most ${MAX_TIMEOUT_SECONDS}, got ${JSON.stringify(text)}`,
    );
  }
  return seconds;
}

const WAIT_OPTION = () =>
  new Option(
    '--wait-for-rollout <duration>',
    'hold until every gateway replica serves the change (e.g. 30s)',
  );

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const FILE_VARIABLES_HELP = `
Secrets from the environment: a string value of the file may hold \${{ env "${FILE_VARIABLE_PREFIX}NAME" }},
replaced by that variable's value (as text, never YAML; keys are never read). Only variables named
${FILE_VARIABLE_PREFIX}… may be read; one that is not set or empty stops the command (exit 2), naming the
file, line, field and variable. The plan shows <$${FILE_VARIABLE_PREFIX}NAME> where its value stands.`;

function program(io: CliIo, setExit: (code: ExitCode) => void): Command {
  const root = new Command('vantageedge')
    .description('VantageEdge admin CLI: tenants, config as code, history, rollback, explain')
    .addOption(
      new Option('-o, --output <format>', 'table, json or yaml').choices(OUTPUT_FORMATS).default('table'),
    )
    .addOption(
      new Option('-p, --profile <name>', 'the saved login to use')
        .env('VANTAGEEDGE_PROFILE')
        .default('default'),
    )
    .option(
      '--timeout <seconds>',
      `how long one request may take, answer and all (default ${DEFAULT_TIMEOUT_SECONDS}; $VANTAGEEDGE_TIMEOUT)`,
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text.trimEnd()),
      writeErr: (text) => io.stderr(text.trimEnd()),
    });

  const context = (): CliContext => {
    const globals = root.opts<{ output: OutputFormat; profile: string; timeout?: string }>();
    return createContext({
      ...io,
      output: globals.output,
      profile: globals.profile,
      timeoutSeconds: timeoutSeconds(globals.timeout, io.env),
    });
  };
  const run =
    <Args extends unknown[]>(action: (ctx: CliContext, ...args: Args) => Promise<ExitCode>) =>
    async (...args: Args) => {
      setExit(await action(context(), ...args));
    };

  root
    .command('login')
    .description('check a token against the admin API and save it in the profile')
    .requiredOption('--url <url>', 'the admin API, e.g. http://127.0.0.1:8080')
    .option('--token <token>', 'a Clerk session token (other users see it in ps: prefer --token-stdin)')
    .option('--token-stdin', 'read the token from standard input')
    .action(
      run((ctx, options: { url: string; token?: string; tokenStdin?: boolean }) => login(ctx, options)),
    );
  root
    .command('logout')
    .description('forget the profile’s token')
    .action(run((ctx) => logout(ctx)));

  root
    .command('get')
    .description(`list or show ${GET_RESOURCES.join(', ')}`)
    .argument('<resource>', GET_RESOURCES.join('|'))
    .argument('[id]', 'one resource by id')
    .option('-t, --tenant <tenant>', 'only this tenant (subdomain or id)')
    .option('--limit <n>', 'audit: the newest n entries', '50')
    .option('--all', 'audit: every entry')
    .option('--cursor <cursor>', 'audit: the entries older than those shown before (as printed then)')
    .action(
      run((ctx, resource: string, id: string | undefined, options: { tenant?: string } & LogEntriesOptions) =>
        get(ctx, resource, id, options),
      ),
    );

  root
    .command('dump')
    .description(
      'print a tenant’s config as a YAML document (apply-able); the values stored, never references to variables',
    )
    .requiredOption('-t, --tenant <tenant>', 'subdomain or id')
    .option('--at-position <n>', 'the config as it was after this event position')
    .option(
      '--select-tag <tag>',
      'only the origins and routes carrying this tag (repeat: every one), as a select_tags document',
      (tag: string, tags: string[]) => [...tags, tag],
      [] as string[],
    )
    .action(
      run((ctx, options: { tenant: string; atPosition?: string; selectTag: string[] }) => dump(ctx, options)),
    );
  root
    .command('diff')
    .description('compare a document with the tenant: exit 0 when equal, 1 when different')
    .requiredOption('-f, --file <file>', 'the document (YAML or JSON; - for stdin)')
    .option('-t, --tenant <tenant>', 'subdomain or id (default: tenant.id or tenant.subdomain of the file)')
    .option('--exit-code', 'exit 1 when different (always on; accepted for git-diff habits)')
    .addHelpText('after', FILE_VARIABLES_HELP)
    .action(run((ctx, options: { file: string; tenant?: string }) => diff(ctx, options)));
  root
    .command('apply')
    .description('make the tenant what the document says: plan, show, apply (idempotent)')
    .requiredOption('-f, --file <file>', 'the document (YAML or JSON; - for stdin)')
    .option('-t, --tenant <tenant>', 'subdomain or id (default: tenant.id or tenant.subdomain of the file)')
    .option('--dry-run', 'show the plan only')
    .option(
      '--if-version <version>',
      'only while the config is at this version (as dump printed it); exit 5 once it changed',
    )
    .addOption(WAIT_OPTION())
    .addHelpText('after', FILE_VARIABLES_HELP)
    .action(run((ctx, options: ApplyOptions) => apply(ctx, options)));
  root
    .command('history')
    .description('the tenant’s config changes, newest first (positions to dump, diff or roll back to)')
    .requiredOption('-t, --tenant <tenant>', 'subdomain or id')
    .option('--limit <n>', 'the newest n entries', '50')
    .option('--all', 'every entry')
    .option('--cursor <cursor>', 'the entries older than those shown before (as printed then)')
    .action(run((ctx, options: { tenant: string } & LogEntriesOptions) => history(ctx, options)));
  root
    .command('rollback')
    .description('restore the config the tenant had after an event position (recorded as new events)')
    .requiredOption('-t, --tenant <tenant>', 'subdomain or id')
    .requiredOption('--to-position <n>', 'the event position whose config to restore')
    .option('--dry-run', 'show what would change')
    .option(
      '--if-version <version>',
      'only while the config is at this version (as the dry run printed it); exit 5 once it changed',
    )
    .addOption(WAIT_OPTION())
    .action(run((ctx, options: RollbackOptions) => rollback(ctx, options)));
  root
    .command('explain')
    .description(
      'what the gateways would do with a request: route (and why not the others), auth, limits, cache, origin',
    )
    .argument('<method>', 'GET, POST, …')
    .argument('<url>', 'the request URL, e.g. https://acme.vantageedge.dev/api/users/1')
    .option('-H, --header <header>', "a request header, 'Name: value' (repeatable)", collect, [] as string[])
    .option('--at <n>', 'with the config as it was after this event position (see history)')
    .option('--at-time <iso>', 'judge key and token expiry at this moment (e.g. 2026-11-24T09:30:00Z)')
    .option('-t, --tenant <tenant>', 'subdomain or id (default: the tenant of the URL host)')
    .option('--client-ip <ip>', 'the client address the gateways would see')
    .option('--json', 'the whole answer as JSON (same as -o json)')
    .action(
      run((ctx, method: string, url: string, options: ExplainOptions) => explain(ctx, method, url, options)),
    );
  root
    .command('schema')
    .description('print the JSON Schema of the tenant document')
    .action(run((ctx) => schema(ctx)));
  return root;
}

/** Runs one command line (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], cliIo: CliIo): Promise<ExitCode> {
  // Everything on stderr is for people: messages carry the admin API's (and so a tenant's) text.
  const io: CliIo = { ...cliIo, stderr: (text) => cliIo.stderr(terminalText(text, { keepNewlines: true })) };
  let code: ExitCode = EXIT.ok;
  try {
    await program(io, (exit) => {
      code = exit;
    }).parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CliError) {
      io.stderr(`vantageedge: ${terminalText(error.message)}`);
      for (const detail of error.details)
        io.stderr(`  ${terminalText(detail.field)}: ${terminalText(detail.issue)}`);
      return error.exitCode;
    }
    io.stderr(`vantageedge: ${(error as Error).stack ?? String(error)}`);
    return EXIT.unavailable;
  }
}
