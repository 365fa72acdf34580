import { createHash, randomUUID } from 'node:crypto';
import type { z } from 'zod';
import {
  changeAnswer,
  configDocumentAnswer,
  logEntry,
  type PlanAnswer,
  planAnswer,
  rollbackAnswer,
  waited,
  waitedChange,
} from '../answer-shapes.js';
import { AnswerLostError, type ApiResponse } from '../api-client.js';
import type { CliContext } from '../context.js';
import { readDocument, tenantRefOf } from '../document-file.js';
import { CliError, EXIT, type ExitCode } from '../exit-codes.js';
import { escapedForFile, type FileVariable, maskedError, maskFileVariables } from '../file-variables.js';
import { type LogEntriesOptions, readLogEntries } from '../log-entries.js';
import { render, renderRows, structured, terminalText } from '../output.js';
import { formatChanges, summary } from '../plan-format.js';
import { resolveTenant, type TenantSummary } from '../tenant-ref.js';

/** dump, diff, apply, history, rollback, schema: a tenant's config as a document and its history. */

type ChangeAnswer = z.output<typeof changeAnswer>;

/** The longest the control plane holds an answer for `?wait_for_rollout=` (it caps the wait at 60 s). */
const MAX_ROLLOUT_WAIT_SECONDS = 60;
const rolloutHold = (wait: string | undefined) => (wait === undefined ? 0 : MAX_ROLLOUT_WAIT_SECONDS);

const configPath = (tenantId: string, rest = '') => `/api/v1/tenants/${tenantId}/config${rest}`;

async function tenantFor(ctx: CliContext, ref: string | undefined, document?: Record<string, unknown>) {
  const chosen = ref ?? (document ? tenantRefOf(document) : undefined);
  if (!chosen) throw new CliError(EXIT.usage, 'name the tenant with -t (or give tenant.id in the file)');
  return resolveTenant(await ctx.client(), chosen);
}

export async function dump(
  ctx: CliContext,
  options: { tenant: string; atPosition?: string; selectTag?: readonly string[] },
): Promise<ExitCode> {
  const client = await ctx.client();
  const tenant = await resolveTenant(client, options.tenant);
  const selectTags = options.selectTag ?? [];
  const answer = await client.get(configPath(tenant.id, '/document'), configDocumentAnswer, {
    at_position: options.atPosition,
    select_tags: selectTags.length === 0 ? undefined : selectTags.join(','),
  });
  // Stored text that reads as a variable reference is written escaped: applied by a CI job, it would
  // be filled with one of the job's secrets.
  const document = escapedForFile(answer.body.document);
  if (ctx.output === 'json') {
    ctx.stdout(structured(document, 'json'));
    return EXIT.ok;
  }
  const schemaUrl = new URL('/schemas/tenant-config.json', client.baseUrl).toString();
  // The comments escaped like any line the CLI prints (a line break in them would end the comment),
  // the document like every JSON/YAML output (terminal controls as \uXXXX): still the same document.
  const comments = [
    `# yaml-language-server: $schema=${schemaUrl}`,
    `# Tenant ${tenant.subdomain}: config version ${answer.body.version} (event position ${answer.body.position}).`,
    `# Apply with: vantageedge apply -f <this file> (--if-version ${answer.body.version}: only while nothing changed since)`,
  ].map((line) => terminalText(line));
  ctx.stdout([...comments, structured(document, 'yaml')].join('\n'));
  return EXIT.ok;
}

async function plan(ctx: CliContext, tenant: TenantSummary, document: unknown): Promise<PlanAnswer> {
  const client = await ctx.client();
  return (
    await client.request('POST', configPath(tenant.id, '/plan'), {
      shape: planAnswer,
      body: document,
      readOnly: true,
    })
  ).body;
}

function showPlan(ctx: CliContext, tenant: TenantSummary, answer: PlanAnswer, heading: string): void {
  ctx.stdout(
    render(answer, ctx.output, () =>
      answer.changes.length === 0
        ? `${heading} ${tenant.subdomain} (config version ${answer.version}): no changes.`
        : `${heading} ${tenant.subdomain} (config version ${answer.version}):\n${formatChanges(answer.changes)}\n${summary(answer.changes)}`,
    ),
  );
}

/** Exit 0 when the tenant already is what the file says, 1 when it differs (like diff --exit-code). */
export async function diff(ctx: CliContext, options: { file: string; tenant?: string }): Promise<ExitCode> {
  const { document, variables } = await readDocument(options.file, ctx.stdin, ctx.env);
  try {
    const tenant = await tenantFor(ctx, options.tenant, document);
    const answer = await plan(ctx, tenant, document);
    showPlan(ctx, tenant, maskFileVariables(answer, variables), 'Differences between the file and');
    return answer.changes.length === 0 ? EXIT.ok : EXIT.different;
  } catch (error) {
    throw maskedError(error, variables);
  }
}

/**
 * The same key for the same document applied to the same config version: a retry (of the request, or
 * of the whole command before the config moved on) is answered from the first run and appends nothing.
 */
export function applyKey(tenantId: string, version: string, document: unknown): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([tenantId, version, document]))
    .digest('hex');
  return `vantageedge-apply-${digest}`;
}

/** `--if-version`: a config version, as `whence` printed it. */
function versionFlag(value: string | undefined, whence: string): string | undefined {
  if (value !== undefined && !/^\d+$/.test(value))
    throw new CliError(EXIT.usage, `--if-version must be a config version (as ${whence} printed it)`);
  return value;
}

export interface ApplyOptions {
  file: string;
  tenant?: string;
  dryRun?: boolean;
  /** The config version the file was made from (as `dump` printed it): a change made since is refused. */
  ifVersion?: string;
  waitForRollout?: string;
}

export async function apply(ctx: CliContext, options: ApplyOptions): Promise<ExitCode> {
  const ifVersion = versionFlag(options.ifVersion, 'dump');
  const { document, variables } = await readDocument(options.file, ctx.stdin, ctx.env);
  try {
    return await applyDocument(ctx, options, ifVersion, document, variables);
  } catch (error) {
    throw maskedError(error, variables);
  }
}

async function applyDocument(
  ctx: CliContext,
  options: ApplyOptions,
  ifVersion: string | undefined,
  document: Record<string, unknown>,
  variables: readonly FileVariable[],
): Promise<ExitCode> {
  const tenant = await tenantFor(ctx, options.tenant, document);
  const planned = await plan(ctx, tenant, document);
  const shown = maskFileVariables(planned, variables);
  // The file is the whole tenant: applied on a later version, it would undo what was changed since.
  if (ifVersion !== undefined && planned.version !== ifVersion) {
    throw new CliError(
      EXIT.conflict,
      `${tenant.subdomain} is at config version ${planned.version}, not config version ${ifVersion} (--if-version): it changed since; nothing was applied. Dump it again, or apply without --if-version to make it what the file says.`,
    );
  }
  if (options.dryRun || planned.changes.length === 0) {
    showPlan(ctx, tenant, shown, options.dryRun ? 'Plan for' : 'Nothing to apply to');
    return EXIT.ok;
  }
  if (ctx.output === 'table') showPlan(ctx, tenant, shown, 'Applying to');
  const client = await ctx.client();
  let answer: ApiResponse<ChangeAnswer | { resource: ChangeAnswer }>;
  try {
    // The client waits and sends it again (429, 503 and 409 with Retry-After, no answer at all) with
    // the same key: a second attempt is answered from the first and appends nothing.
    answer = await client.request('POST', configPath(tenant.id, '/apply'), {
      shape: waited(changeAnswer),
      body: document,
      headers: {
        'if-match': `"${planned.version}"`,
        'idempotency-key': applyKey(tenant.id, planned.version, document),
      },
      query: { wait_for_rollout: options.waitForRollout },
      holdSeconds: rolloutHold(options.waitForRollout),
      accept: [202],
    });
  } catch (error) {
    if (error instanceof AnswerLostError) return reportAnswerLost(ctx, tenant, error, options.waitForRollout);
    throw explainStale(error);
  }
  return reportChange(
    ctx,
    { ...answer, body: maskFileVariables(answer.body, variables) },
    (body) =>
      `Applied ${body.changes.length} change${body.changes.length === 1 ? '' : 's'} to ${tenant.subdomain}: config version ${body.version} (event position ${body.position}).`,
  );
}

/**
 * 409 idempotency_answer_lost: an earlier attempt of this very command (same key) was applied and the
 * control plane lost its answer. The change is made, so this is a success, reported with the position
 * of its last event; whether it is live on every replica was not waited for (exit 6 when asked to).
 */
function reportAnswerLost(
  ctx: CliContext,
  tenant: TenantSummary,
  error: AnswerLostError,
  waitForRollout: string | undefined,
): ExitCode {
  const at = error.position === null ? '' : ` (event position ${error.position})`;
  ctx.stdout(
    render(
      { tenant_id: tenant.id, applied: true, answer_lost: true, position: error.position },
      ctx.output,
      () =>
        `Applied to ${tenant.subdomain}${at}: the control plane stored the change but lost its answer, so the changes are not listed here (vantageedge history -t ${tenant.subdomain} shows them).` +
        (waitForRollout === undefined
          ? ''
          : '\nWhether it is live on every gateway replica was not waited for.'),
    ),
  );
  return waitForRollout === undefined ? EXIT.ok : EXIT.rolloutPending;
}

/** 412: the config moved on since the version the command was to run on; `then` says what to do. */
function explainStale(error: unknown, then = 'Run the command again.'): unknown {
  if (error instanceof CliError && error.message.startsWith('412')) {
    return new CliError(
      EXIT.conflict,
      `the tenant's config changed after the plan was made; nothing was applied. ${then} (${error.message})`,
    );
  }
  return error;
}

function reportChange<Body extends ChangeAnswer>(
  ctx: CliContext,
  answer: ApiResponse<Body | { resource: Body }>,
  done: (body: Body) => string,
): ExitCode {
  const pending = answer.status === 202;
  const body = waitedChange(answer.body);
  ctx.stdout(
    render(answer.body, ctx.output, () =>
      pending
        ? `${done(body)}\n${
            answer.headers.get('x-rollout') === 'unknown'
              ? 'Stored; whether it is live on every gateway replica could not be read (rollout status unavailable).'
              : 'Not yet live on every gateway replica (the rollout wait ran out).'
          }`
        : done(body),
    ),
  );
  return pending ? EXIT.rolloutPending : EXIT.ok;
}

export async function history(
  ctx: CliContext,
  options: { tenant: string } & LogEntriesOptions,
): Promise<ExitCode> {
  const client = await ctx.client();
  const tenant = await resolveTenant(client, options.tenant);
  const entries = await readLogEntries(ctx, client, configPath(tenant.id, '/history'), logEntry, {}, options);
  ctx.stdout(
    renderRows(
      entries.data,
      [
        { header: 'POSITION', value: (entry) => entry.position },
        { header: 'TIME', value: (entry) => entry.occurred_at },
        { header: 'ACTOR', value: (entry) => entry.actor },
        { header: 'EVENT', value: (entry) => entry.event_type },
        { header: 'RESOURCE', value: (entry) => `${entry.resource_type} ${entry.resource_id}` },
        { header: 'WHAT', value: (entry) => entry.summary },
      ],
      ctx.output,
      entries,
    ),
  );
  return EXIT.ok;
}

export interface RollbackOptions {
  tenant: string;
  toPosition: string;
  /** The config version the rollback may run on (If-Match), as its dry run printed it. */
  ifVersion?: string;
  dryRun?: boolean;
  waitForRollout?: string;
}

export async function rollback(ctx: CliContext, options: RollbackOptions): Promise<ExitCode> {
  const client = await ctx.client();
  const tenant = await resolveTenant(client, options.tenant);
  if (!/^\d+$/.test(options.toPosition))
    throw new CliError(EXIT.usage, '--to-position must be an event position');
  versionFlag(options.ifVersion, 'the dry run');
  // A rollback reviewed as a dry run runs only on the version reviewed: a change made since is 412.
  const ifMatch = options.ifVersion === undefined ? {} : { 'if-match': `"${options.ifVersion}"` };
  type RollbackAnswer = z.output<typeof rollbackAnswer>;
  let answer: ApiResponse<PlanAnswer | RollbackAnswer | { resource: RollbackAnswer }>;
  try {
    answer = await client.request('POST', configPath(tenant.id, '/rollback'), {
      // A dry run answers the plan; a rollback what it changed, or that (202) its rollout is not done.
      shape: options.dryRun ? planAnswer : waited(rollbackAnswer),
      body: { to_position: options.toPosition, dry_run: options.dryRun ?? false },
      query: { wait_for_rollout: options.waitForRollout },
      holdSeconds: rolloutHold(options.waitForRollout),
      accept: [202],
      // One key per run of the command, sent again with every retry of it: a rollback whose answer
      // was lost is answered from the event log instead of being run a second time.
      ...(options.dryRun
        ? { readOnly: true, headers: ifMatch }
        : { headers: { ...ifMatch, 'idempotency-key': `vantageedge-rollback-${randomUUID()}` } }),
    });
  } catch (error) {
    if (error instanceof AnswerLostError) return reportAnswerLost(ctx, tenant, error, options.waitForRollout);
    throw explainStale(error, 'Review the rollback again (--dry-run).');
  }
  if (options.dryRun) {
    showPlan(
      ctx,
      tenant,
      answer.body as PlanAnswer,
      `Rolling back to position ${options.toPosition} would change`,
    );
    return EXIT.ok;
  }
  return reportChange(ctx, answer as ApiResponse<RollbackAnswer | { resource: RollbackAnswer }>, (body) =>
    body.changes.length === 0
      ? `${tenant.subdomain} already has the config of position ${body.to_position}: nothing to roll back.`
      : `Rolled ${tenant.subdomain} back to position ${body.to_position}:\n${formatChanges(body.changes)}\n` +
        `config version ${body.version} (event position ${body.position}).`,
  );
}

export async function schema(ctx: CliContext): Promise<ExitCode> {
  const client = await ctx.client();
  ctx.stdout(structured((await client.get('/schemas/tenant-config.json')).body, 'json'));
  return EXIT.ok;
}
