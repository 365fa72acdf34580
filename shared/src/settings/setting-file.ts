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

/** The labels Node's TLS reads as a certificate in a CA file (OpenSSL's PEM_read_bio_X509_AUX). */
const CERTIFICATE_LABELS = ['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE'];

/**
 * Why `pem` is not a set of CA certificates a TLS client can trust, or undefined when it is. Node's TLS
 * reads a CA file block by block and stops, silently, at the first one it cannot read — a certificate
 * (in any of its labels) that does not parse, another block whose base64 is broken or whose END line
 * does not match, a block cut short — trusting none of the certificates after it. It reads past text
 * between blocks and past other blocks that decode (a key, a CRL).
 */
export function pemCertificatesProblem(pem: string): string | undefined {
  const blocks = pemBlocks(pem);
  const certificates = blocks.filter((block) => CERTIFICATE_LABELS.includes(block.label));
  if (certificates.length === 0) return 'holds no PEM certificate';
  for (const [index, block] of blocks.entries()) {
    if (CERTIFICATE_LABELS.includes(block.label)) {
      if (parses(block.text)) continue;
      const number = certificates.indexOf(block) + 1;
      return `holds a PEM certificate that does not parse (certificate ${number} of ${certificates.length})`;
    }
    if (!block.ended || !decodes(block.body))
      return `holds a PEM block that does not parse (block ${index + 1} of ${blocks.length})`;
  }
  return undefined;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: OpenSSL strips them with the spaces
const TRAILING_WHITESPACE = /[\x00-\x20]+$/;

interface PemBlock {
  label: string;
  /** From its BEGIN line to its END line (or the end of the file). */
  text: string;
  /** The lines between, header lines (`Proc-Type: …`) included. */
  body: string[];
  /** Whether an END line with the BEGIN line's label closes it. */
  ended: boolean;
}

/**
 * The blocks as OpenSSL finds them: a BEGIN line is one that starts `-----BEGIN ` and ends `-----`
 * (past trailing spaces and controls, `\r` among them), the next line starting `-----END ` ends the
 * block, and other lines between blocks are skipped.
 */
function pemBlocks(pem: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let open: PemBlock | undefined;
  for (const rawLine of pem.replace(/^\uFEFF/, '').split('\n')) {
    const line = rawLine.replace(TRAILING_WHITESPACE, '');
    if (open === undefined) {
      const begin = /^-----BEGIN (.*)-----$/.exec(line);
      if (begin) {
        open = { label: begin[1]!, text: line, body: [], ended: false };
        blocks.push(open);
      }
      continue;
    }
    open.text += `\n${line}`;
    if (line.startsWith('-----END ')) {
      open.ended = line === `-----END ${open.label}-----`;
      open = undefined;
    } else open.body.push(line);
  }
  return blocks;
}

/**
 * Whether a block's lines decode as OpenSSL reads them: a blank line ends the header lines
 * (`Proc-Type: …`) before it, the lines after it must then be 64 characters but the last, a second
 * blank line is an error, and what remains must be base64.
 */
function decodes(body: readonly string[]): boolean {
  const headerEnd = body.indexOf('');
  const data = body.slice(headerEnd + 1);
  if (data.includes('')) return false;
  if (
    headerEnd >= 0 &&
    data.some((line, index) => line.length > 64 || (line.length < 64 && index < data.length - 1))
  )
    return false;
  const base64 = data.join('').replace(/[ \t]/g, '');
  return base64.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(base64);
}

function parses(certificatePem: string): boolean {
  try {
    new X509Certificate(certificatePem);
    return true;
  } catch {
    return false;
  }
}
