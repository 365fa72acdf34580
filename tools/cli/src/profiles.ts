import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

/**
 * Where `login` keeps each profile's admin API URL and token: $VANTAGEEDGE_CONFIG (a file), else
 * $XDG_CONFIG_HOME/vantageedge/config.json, else ~/.config/vantageedge/config.json. The file holds
 * tokens, so it is written owner-only (0600) in an owner-only folder, atomically.
 */

export interface Profile {
  url: string;
  token: string;
}

export interface ProfileFile {
  profiles: Record<string, Profile>;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['VANTAGEEDGE_CONFIG']) return path.resolve(env['VANTAGEEDGE_CONFIG']);
  const base = env['XDG_CONFIG_HOME'] || path.join(os.homedir(), '.config');
  return path.join(base, 'vantageedge', 'config.json');
}

export async function readProfiles(file: string): Promise<ProfileFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    // No such file (ENOTDIR: a part of its path is a file): no login saved yet.
    if (['ENOENT', 'ENOTDIR'].includes(reasonOf(error))) return { profiles: noProfiles() };
    throw new CliError(
      EXIT.usage,
      `cannot read ${file} (${reasonOf(error)}); fix it or set $VANTAGEEDGE_CONFIG to another file`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(EXIT.usage, `${file} is not valid JSON; fix or delete it and log in again`);
  }
  const profiles =
    typeof parsed === 'object' && parsed !== null ? (parsed as { profiles?: unknown }).profiles : undefined;
  if (typeof profiles !== 'object' || profiles === null) return { profiles: noProfiles() };
  const valid = noProfiles();
  for (const [name, value] of Object.entries(profiles)) {
    const { url, token } = (value ?? {}) as Partial<Profile>;
    if (typeof url === 'string' && typeof token === 'string') valid[name] = { url, token };
  }
  return { profiles: valid };
}

/**
 * Profiles by name, without Object.prototype's members: a profile may be named `toString` or
 * `__proto__`, and must then be found (or not) as any other.
 */
function noProfiles(): Record<string, Profile> {
  return Object.create(null) as Record<string, Profile>;
}

export async function saveProfile(file: string, name: string, profile: Profile): Promise<void> {
  const current = await readProfiles(file);
  current.profiles[name] = profile;
  await writeProfiles(file, current);
}

export async function removeProfile(file: string, name: string): Promise<boolean> {
  const current = await readProfiles(file);
  if (!(name in current.profiles)) return false;
  delete current.profiles[name];
  await writeProfiles(file, current);
  return true;
}

async function writeProfiles(file: string, content: ProfileFile): Promise<void> {
  let temporary: string | undefined;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // A new file under a name no one can foresee ('wx': never one found there, nor a link's target),
    // so it is owner-only from its first byte; renamed over the path, it replaces a link found there.
    temporary = `${file}.${randomBytes(12).toString('hex')}.tmp`;
    await writeFile(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(temporary, file);
  } catch (error) {
    // Not one found under its name (EEXIST): that is someone else's.
    if (temporary !== undefined && reasonOf(error) !== 'EEXIST')
      await rm(temporary, { force: true }).catch(() => {});
    throw new CliError(
      EXIT.usage,
      `cannot save the login in ${file} (${reasonOf(error)}); set $VANTAGEEDGE_CONFIG to a file you may write`,
    );
  }
}

/** The system's short reason (EACCES, EISDIR, …): the message and stack of a file error are not for the terminal. */
function reasonOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
