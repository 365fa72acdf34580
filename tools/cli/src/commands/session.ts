import { withoutTrailingSlashes } from '@vantageedge/shared/http/trailing-slashes';
import { shownUrl } from '../admin-api-url.js';
import { page, tenantSummary } from '../answer-shapes.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT, type ExitCode } from '../exit-codes.js';
import { removeProfile, saveProfile } from '../profiles.js';

/**
 * login: checks the token against the admin API before saving it in the profile (never printed).
 * The token comes from --token-stdin (keeps it out of the shell history and the process list),
 * $VANTAGEEDGE_TOKEN, or --token (other users of the machine can read it: warned about).
 */
export async function login(
  ctx: CliContext,
  options: { url: string; token?: string; tokenStdin?: boolean },
): Promise<ExitCode> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new CliError(EXIT.usage, `--url ${shownUrl(options.url)} is not a URL`);
  }
  if (options.token !== undefined) {
    ctx.stderr(
      'vantageedge: warning: a token given with --token is visible to every user of this machine (ps, /proc/<pid>/cmdline) and stays in the shell history; give it with --token-stdin or $VANTAGEEDGE_TOKEN instead',
    );
  }
  const token = (
    options.tokenStdin ? await ctx.stdin() : (options.token ?? ctx.env['VANTAGEEDGE_TOKEN'] ?? '')
  ).trim();
  if (token === '')
    throw new CliError(EXIT.usage, 'give the token with --token-stdin, --token or $VANTAGEEDGE_TOKEN');
  const base = withoutTrailingSlashes(url.toString());
  await ctx.connect(base, token).get('/api/v1/tenants', page(tenantSummary), { limit: 1 });
  await saveProfile(ctx.configFile, ctx.profile, { url: base, token });
  ctx.stdout(`Logged in to ${base} (profile ${ctx.profile}, saved in ${ctx.configFile}).`);
  return EXIT.ok;
}

export async function logout(ctx: CliContext): Promise<ExitCode> {
  const removed = await removeProfile(ctx.configFile, ctx.profile);
  ctx.stdout(
    removed ? `Logged out (profile ${ctx.profile} removed).` : `Profile ${ctx.profile} was not logged in.`,
  );
  return EXIT.ok;
}
