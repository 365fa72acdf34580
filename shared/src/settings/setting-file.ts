import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SettingsError } from './load-settings.js';

/**
 * Files that settings name (keys, CA certificates, client certificates), read once at start: a file
 * that cannot be read or does not hold what its setting says stops the service with one line naming the
 * setting, instead of a connection or listener failing later. A reason names the file's path and the
 * system's code (ENOENT, EACCES, EISDIR), never what the file holds.
 */

export type ReadFile = (path: string) => string;

const readUtf8: ReadFile = (path) => readFileSync(path, 'utf8');

/** The file's text, or why it cannot be read ("cannot be read (/path: ENOENT)"). */
export function readFileOrIssue(
  path: string,
  readFile: ReadFile = readUtf8,
): { text: string; issue?: undefined } | { text?: undefined; issue: string } {
  try {
    return { text: readFile(path) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return { issue: `cannot be read (${path}: ${code})` };
  }
}

/** The text of the file at `path` that `setting` names; SettingsError naming the setting when unreadable. */
export function readSettingFile(setting: string, path: string, readFile: ReadFile = readUtf8): string {
  const file = readFileOrIssue(path, readFile);
  if (file.issue !== undefined) throw new SettingsError([{ setting, issue: file.issue }]);
  return file.text;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Why `pem` is not a set of CA certificates a TLS client can trust, or undefined when it is. Every
 * certificate block must parse: Node's TLS stops reading a CA file at the first block that does not,
 * silently, and would trust none of the certificates from there on.
 */
export function pemCertificatesProblem(pem: string): string | undefined {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  const broken = blocks.findIndex((block) => !parses(block));
  if (broken < 0) return undefined;
  return `holds a PEM certificate that does not parse (certificate ${broken + 1} of ${blocks.length})`;
}

function parses(certificatePem: string): boolean {
  try {
    new X509Certificate(certificatePem);
    return true;
  } catch {
    return false;
  }
}
