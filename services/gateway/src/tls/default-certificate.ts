import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { SecureContext } from 'node:tls';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { SettingsError } from '@vantageedge/shared/settings/load-settings';
import { readSettingFile } from '@vantageedge/shared/settings/setting-file';
import { secureContextFor } from './tls-policy.js';

export interface ServedCertificate {
  readonly context: SecureContext;
  /** The chain and key, for listeners that take them as options (the context for clients without SNI). */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly fingerprint256: string;
  readonly notAfterMs: number;
  /** The leaf certificate, for the names it covers. */
  readonly x509: X509Certificate;
}

export interface DefaultCertificateOptions {
  certFile: string;
  keyFile: string;
  /** How often the files are checked for a change; 0 = never. */
  reloadMs: number;
  logger: Logger;
}

async function loadPair(certFile: string, keyFile: string): Promise<ServedCertificate> {
  const [certificatePem, privateKeyPem] = await Promise.all([
    readFile(certFile, 'utf8'),
    readFile(keyFile, 'utf8'),
  ]);
  const leaf = new X509Certificate(certificatePem);
  // createSecureContext also refuses a key that does not belong to the certificate.
  const context = secureContextFor(certificatePem, privateKeyPem);
  return {
    context,
    certificatePem,
    privateKeyPem,
    fingerprint256: leaf.fingerprint256,
    notAfterMs: Date.parse(leaf.validTo),
    x509: leaf,
  };
}

/**
 * At start-up, before any listener: the default certificate's files can be read and hold a certificate
 * and its own key, or SettingsError names the file's setting (instead of the TLS listener failing with
 * a stack trace once the replica is half started).
 */
export function assertDefaultCertificateLoads(settings: {
  GATEWAY_TLS_CERT_FILE?: string | undefined;
  GATEWAY_TLS_KEY_FILE?: string | undefined;
}): void {
  const { GATEWAY_TLS_CERT_FILE: certFile, GATEWAY_TLS_KEY_FILE: keyFile } = settings;
  if (certFile === undefined || keyFile === undefined) return;
  const certificatePem = readSettingFile('GATEWAY_TLS_CERT_FILE', certFile);
  const privateKeyPem = readSettingFile('GATEWAY_TLS_KEY_FILE', keyFile);
  try {
    new X509Certificate(certificatePem);
  } catch (error) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_TLS_CERT_FILE',
        issue: `${certFile} holds no PEM certificate (${(error as Error).message})`,
      },
    ]);
  }
  try {
    secureContextFor(certificatePem, privateKeyPem);
  } catch (error) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_TLS_KEY_FILE',
        issue: `${keyFile} is not the private key of ${certFile} (${(error as Error).message})`,
      },
    ]);
  }
}

async function signature(file: string): Promise<string> {
  const info = await stat(file);
  return `${info.ino}:${info.size}:${info.mtimeMs}`;
}

/**
 * The platform's certificate for the base domains (GATEWAY_TLS_CERT_FILE / GATEWAY_TLS_KEY_FILE), also
 * served for any name without a tenant certificate. The files are polled: a renewed pair (written in
 * place or swapped in by rename, as cert-manager and certbot do) replaces the certificate for new
 * handshakes; open connections keep theirs. A half-written or mismatched pair is not applied: the
 * previous certificate stays until both files agree.
 */
export class DefaultCertificate {
  #current: ServedCertificate;
  #appliedSignature: string;
  #failedSignature: string | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #options: DefaultCertificateOptions;
  #checking = false;
  readonly #listeners: Array<(certificate: ServedCertificate) => void> = [];

  private constructor(options: DefaultCertificateOptions, first: ServedCertificate, firstSignature: string) {
    this.#options = options;
    this.#current = first;
    this.#appliedSignature = firstSignature;
    if (options.reloadMs > 0) {
      this.#timer = setInterval(() => void this.checkForChange(), options.reloadMs);
      this.#timer.unref();
    }
  }

  /** Loads the pair or throws (a gateway must not start on a TLS port without a certificate). */
  static async load(options: DefaultCertificateOptions): Promise<DefaultCertificate> {
    const before = await DefaultCertificate.#signatureOf(options);
    const first = await loadPair(options.certFile, options.keyFile);
    return new DefaultCertificate(options, first, before);
  }

  static async #signatureOf(options: DefaultCertificateOptions): Promise<string> {
    const [cert, key] = await Promise.all([signature(options.certFile), signature(options.keyFile)]);
    return `${cert}|${key}`;
  }

  get current(): ServedCertificate {
    return this.#current;
  }

  /** Called after a changed certificate was applied (a listener updates its no-SNI context). */
  onChange(listener: (certificate: ServedCertificate) => void): void {
    this.#listeners.push(listener);
  }

  /** Reloads when either file changed since the last applied pair; true when a new pair was applied. */
  async checkForChange(): Promise<boolean> {
    if (this.#checking) return false;
    this.#checking = true;
    try {
      const now = await DefaultCertificate.#signatureOf(this.#options).catch(() => undefined);
      if (now === undefined || now === this.#appliedSignature) return false;
      let next: ServedCertificate;
      try {
        next = await loadPair(this.#options.certFile, this.#options.keyFile);
      } catch (error) {
        if (this.#failedSignature !== now) {
          this.#failedSignature = now;
          this.#options.logger.error('default TLS certificate not reloaded: keeping the previous one', {
            cert_file: this.#options.certFile,
            key_file: this.#options.keyFile,
            error: (error as Error).message,
          });
        }
        return false;
      }
      // Files that changed again while being read are read once more on the next check.
      const after = await DefaultCertificate.#signatureOf(this.#options).catch(() => undefined);
      if (after !== now) return false;
      this.#current = next;
      this.#appliedSignature = now;
      this.#failedSignature = undefined;
      for (const listener of this.#listeners) listener(next);
      this.#options.logger.info('default TLS certificate reloaded', {
        fingerprint_sha256: next.fingerprint256,
        not_after: new Date(next.notAfterMs).toISOString(),
      });
      return true;
    } finally {
      this.#checking = false;
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
