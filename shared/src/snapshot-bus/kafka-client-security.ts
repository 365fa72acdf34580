import { type ConnectionOptions, createSecureContext } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { z } from 'zod';
import { booleanFlag } from '../settings/common-settings.js';
import { SettingsError } from '../settings/load-settings.js';
import { pemCertificatesProblem, type ReadFile, readFileOrIssue } from '../settings/setting-file.js';

const SASL_MECHANISMS = ['scram-sha-256', 'scram-sha-512', 'plain'] as const;
type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/**
 * How every Kafka client of the platform authenticates and encrypts (the snapshot projector writes
 * every tenant's configuration to the topic and the gateways serve what they read there, so a broker
 * anyone can reach must not be anyone's to write). Unset: PLAINTEXT without authentication.
 */
export const kafkaSecuritySettings = {
  /** SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (as Kafka writes them, or lower case). */
  KAFKA_SASL_MECHANISM: z
    .string()
    .transform((value) => value.toLowerCase())
    .pipe(z.enum(SASL_MECHANISMS, { message: `must be one of ${SASL_MECHANISMS.join(', ')}` }))
    .optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** PLAIN sends the password as it is: only over TLS, unless this says the network is trusted. */
  KAFKA_SASL_PLAIN_WITHOUT_TLS: booleanFlag.default(false),
  /**
   * TLS to the brokers, trusting Node's built-in CA list (Mozilla's, plus NODE_EXTRA_CA_CERTS; not the
   * operating system's store) unless KAFKA_TLS_CA_FILE names others.
   */
  KAFKA_TLS: booleanFlag.optional(),
  KAFKA_TLS_CA_FILE: z.string().min(1).optional(),
  /** A client certificate (PEM) and its unencrypted key, for brokers that authenticate clients by TLS. */
  KAFKA_TLS_CERT_FILE: z.string().min(1).optional(),
  KAFKA_TLS_KEY_FILE: z.string().min(1).optional(),
};

export interface KafkaSecuritySettings {
  KAFKA_SASL_MECHANISM?: SaslMechanism | undefined;
  KAFKA_SASL_USERNAME?: string | undefined;
  KAFKA_SASL_PASSWORD?: string | undefined;
  KAFKA_SASL_PLAIN_WITHOUT_TLS?: boolean | undefined;
  KAFKA_TLS?: boolean | undefined;
  KAFKA_TLS_CA_FILE?: string | undefined;
  KAFKA_TLS_CERT_FILE?: string | undefined;
  KAFKA_TLS_KEY_FILE?: string | undefined;
}

/** The kafkajs client options of those settings: spread into `new Kafka({...})`. */
export interface KafkaClientSecurity {
  ssl?: true | ConnectionOptions;
  sasl?: SASLOptions;
}

type Problem = { setting: string; issue: string };

/**
 * The `ssl` and `sasl` options of every Kafka client, read once at start: the files are read and
 * parsed here, so a missing, unreadable or mismatched one stops the service at start naming its
 * setting. No error or option built here carries the password (kafkajs keeps it in the sasl object).
 */
export function kafkaClientSecurity(
  settings: KafkaSecuritySettings,
  readFile?: ReadFile,
): KafkaClientSecurity {
  const problems: Problem[] = [];
  const ssl = tlsOptions(settings, readFile, problems);
  const sasl = saslOptions(settings, wantsTls(settings), problems);
  if (problems.length > 0) throw new SettingsError(problems);
  return { ...(ssl ? { ssl } : {}), ...(sasl ? { sasl } : {}) };
}

const TLS_FILES = ['KAFKA_TLS_CA_FILE', 'KAFKA_TLS_CERT_FILE', 'KAFKA_TLS_KEY_FILE'] as const;

/** TLS is on with KAFKA_TLS=true or any of its files (a CA file alone must not leave it off). */
function wantsTls(settings: KafkaSecuritySettings): boolean {
  return settings.KAFKA_TLS === true || TLS_FILES.some((name) => settings[name] !== undefined);
}

function tlsOptions(
  settings: KafkaSecuritySettings,
  readFile: ReadFile | undefined,
  problems: Problem[],
): true | ConnectionOptions | undefined {
  const files = TLS_FILES.filter((name) => settings[name] !== undefined);
  if (settings.KAFKA_TLS === false && files.length > 0) {
    problems.push({
      setting: 'KAFKA_TLS',
      issue: `is false but ${files.join(' and ')} ${files.length > 1 ? 'are' : 'is'} set: unset it (or set it to true) to use TLS`,
    });
    return undefined;
  }
  if (!wantsTls(settings)) return undefined;
  if ((settings.KAFKA_TLS_CERT_FILE === undefined) !== (settings.KAFKA_TLS_KEY_FILE === undefined)) {
    const missing = settings.KAFKA_TLS_CERT_FILE === undefined ? 'KAFKA_TLS_CERT_FILE' : 'KAFKA_TLS_KEY_FILE';
    const given = missing === 'KAFKA_TLS_CERT_FILE' ? 'KAFKA_TLS_KEY_FILE' : 'KAFKA_TLS_CERT_FILE';
    problems.push({
      setting: missing,
      issue: `is required with ${given} (a client certificate and its key)`,
    });
    return undefined;
  }
  const read = (setting: (typeof TLS_FILES)[number]): string | undefined => {
    const path = settings[setting];
    if (path === undefined) return undefined;
    const file = readFileOrIssue(path, readFile);
    if (file.issue !== undefined) problems.push({ setting, issue: file.issue });
    return file.text;
  };
  const ca = read('KAFKA_TLS_CA_FILE');
  const cert = read('KAFKA_TLS_CERT_FILE');
  const key = read('KAFKA_TLS_KEY_FILE');
  if (problems.length > 0) return undefined;
  const caProblem = ca === undefined ? undefined : pemCertificatesProblem(ca);
  if (caProblem !== undefined)
    problems.push({ setting: 'KAFKA_TLS_CA_FILE', issue: `${settings.KAFKA_TLS_CA_FILE} ${caProblem}` });
  if (cert !== undefined && key !== undefined) {
    checkPem('KAFKA_TLS_CERT_FILE', { cert }, cert.includes('BEGIN CERTIFICATE'), problems);
    if (problems.length === 0)
      checkPem('KAFKA_TLS_KEY_FILE', { cert, key }, key.includes('PRIVATE KEY'), problems);
  }
  if (problems.length > 0) return undefined;
  if (ca === undefined && cert === undefined) return true;
  return { ...(ca !== undefined ? { ca: [ca] } : {}), ...(cert !== undefined ? { cert, key } : {}) };
}

/** Node's own parse of the PEM (its messages name no key material): a bad file fails here, not at connect. */
function checkPem(
  setting: string,
  options: ConnectionOptions,
  looksLikePem: boolean,
  problems: Problem[],
): void {
  const what =
    setting === 'KAFKA_TLS_KEY_FILE'
      ? 'an unencrypted PEM private key of the certificate in KAFKA_TLS_CERT_FILE'
      : 'PEM certificates';
  if (!looksLikePem) {
    problems.push({ setting, issue: `must hold ${what}` });
    return;
  }
  try {
    createSecureContext(options);
  } catch (error) {
    problems.push({ setting, issue: `must hold ${what} (${(error as Error).message})` });
  }
}

function saslOptions(
  settings: KafkaSecuritySettings,
  tls: boolean,
  problems: Problem[],
): SASLOptions | undefined {
  const mechanism = settings.KAFKA_SASL_MECHANISM;
  if (mechanism === undefined) {
    for (const setting of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
      if (settings[setting] !== undefined)
        problems.push({
          setting: 'KAFKA_SASL_MECHANISM',
          issue: `is required with ${setting} (${SASL_MECHANISMS.join(', ')}); without it the clients would not authenticate`,
        });
    }
    return undefined;
  }
  const { KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = settings;
  if (username === undefined)
    problems.push({ setting: 'KAFKA_SASL_USERNAME', issue: 'is required with KAFKA_SASL_MECHANISM' });
  if (password === undefined)
    problems.push({ setting: 'KAFKA_SASL_PASSWORD', issue: 'is required with KAFKA_SASL_MECHANISM' });
  if (mechanism === 'plain' && !tls && settings.KAFKA_SASL_PLAIN_WITHOUT_TLS !== true)
    problems.push({
      setting: 'KAFKA_SASL_MECHANISM',
      issue:
        'plain sends the password unencrypted: set KAFKA_TLS=true (or KAFKA_TLS_CA_FILE), use scram-sha-512, or set KAFKA_SASL_PLAIN_WITHOUT_TLS=true on a network you trust',
    });
  if (username === undefined || password === undefined) return undefined;
  return { mechanism, username, password } as SASLOptions;
}

/**
 * What a service logs at start about settings it takes but an operator should know the cost of: SCRAM
 * keeps the password off the wire, but without TLS the snapshots themselves travel in clear, and anyone
 * on the path can read every tenant's configuration or change it in transit.
 */
export function kafkaSecurityWarning(settings: KafkaSecuritySettings): string | undefined {
  if (settings.KAFKA_SASL_MECHANISM === undefined || wantsTls(settings)) return undefined;
  return 'Kafka connections authenticate (KAFKA_SASL_MECHANISM) but are not encrypted: snapshots travel in clear and can be changed on the way; set KAFKA_TLS=true or KAFKA_TLS_CA_FILE';
}
