import { beforeAll, describe, expect, it } from 'vitest';
import { parseSettings, SettingsError } from '../settings/load-settings.js';
import { problemsOf } from '../testing/settings-problems.js';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
  type TestCertificate,
} from '../testing/test-certificates.js';
import { kafkaClientSecurity, kafkaSecurityWarning } from './kafka-client-security.js';
import { snapshotBusSettings } from './settings.js';

const PASSWORD = 'correct-horse-battery-staple';
let ca: TestCa;
let client: TestCertificate;
let otherClient: TestCertificate;
let files: Record<string, string>;

beforeAll(async () => {
  ca = await createTestCa('Kafka Test CA');
  client = await issueTestCertificate(ca, { dnsNames: ['gateway'] });
  otherClient = await issueTestCertificate(ca, { dnsNames: ['other'] });
  files = {
    '/etc/kafka/ca.pem': ca.certificatePem,
    '/etc/kafka/client.crt': client.certificatePem,
    '/etc/kafka/client.key': client.privateKeyPem,
    '/etc/kafka/other.key': otherClient.privateKeyPem,
    '/etc/kafka/garbage': 'not a certificate',
  };
});

function readFile(path: string): string {
  const content = files[path];
  if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  return content;
}

/** The kafkajs options of an environment, through the services' settings schema. */
function security(env: Record<string, string>) {
  return kafkaClientSecurity(parseSettings(snapshotBusSettings, env), readFile);
}

function problems(env: Record<string, string>) {
  return problemsOf(() => security(env));
}

describe('Kafka client security settings', () => {
  it('is PLAINTEXT without authentication when nothing is set', () => {
    expect(security({})).toEqual({});
  });

  it('authenticates with SCRAM over TLS trusting a CA file', () => {
    expect(
      security({
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'gateway',
        KAFKA_SASL_PASSWORD: PASSWORD,
        KAFKA_TLS_CA_FILE: '/etc/kafka/ca.pem',
      }),
    ).toEqual({
      ssl: { ca: [ca.certificatePem] },
      sasl: { mechanism: 'scram-sha-512', username: 'gateway', password: PASSWORD },
    });
  });

  it('uses the system CAs with KAFKA_TLS=true alone, and presents a client certificate with its key', () => {
    expect(security({ KAFKA_TLS: 'true' })).toEqual({ ssl: true });
    expect(
      security({ KAFKA_TLS_CERT_FILE: '/etc/kafka/client.crt', KAFKA_TLS_KEY_FILE: '/etc/kafka/client.key' }),
    ).toEqual({ ssl: { cert: client.certificatePem, key: client.privateKeyPem } });
  });

  it.each([
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'gateway' }, 'KAFKA_SASL_PASSWORD'],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_PASSWORD: PASSWORD }, 'KAFKA_SASL_USERNAME'],
    [{ KAFKA_SASL_USERNAME: 'gateway', KAFKA_SASL_PASSWORD: PASSWORD }, 'KAFKA_SASL_MECHANISM'],
    [{ KAFKA_TLS_CERT_FILE: '/etc/kafka/client.crt' }, 'KAFKA_TLS_KEY_FILE'],
    [{ KAFKA_TLS_KEY_FILE: '/etc/kafka/client.key' }, 'KAFKA_TLS_CERT_FILE'],
    [{ KAFKA_TLS: 'false', KAFKA_TLS_CA_FILE: '/etc/kafka/ca.pem' }, 'KAFKA_TLS'],
  ])('refuses an incomplete combination %o, naming %s', (env, setting) => {
    expect(problems(env).map((problem) => problem.setting)).toContain(setting);
  });

  it('refuses PLAIN without TLS, unless the network is declared trusted', () => {
    const plain = {
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'gateway',
      KAFKA_SASL_PASSWORD: PASSWORD,
    };
    expect(problems(plain)).toEqual([
      {
        setting: 'KAFKA_SASL_MECHANISM',
        issue: expect.stringMatching(/unencrypted.*KAFKA_SASL_PLAIN_WITHOUT_TLS/),
      },
    ]);
    expect(security({ ...plain, KAFKA_TLS: 'true' }).sasl?.mechanism).toBe('plain');
    expect(security({ ...plain, KAFKA_SASL_PLAIN_WITHOUT_TLS: 'true' })).toEqual({
      sasl: { mechanism: 'plain', username: 'gateway', password: PASSWORD },
    });
  });

  it('refuses an unknown mechanism, listing the ones it takes', () => {
    expect(problemsOf(() => parseSettings(snapshotBusSettings, { KAFKA_SASL_MECHANISM: 'gssapi' }))).toEqual([
      { setting: 'KAFKA_SASL_MECHANISM', issue: expect.stringContaining('scram-sha-512') },
    ]);
  });

  it('refuses at start a file that cannot be read or does not hold what its setting says', () => {
    expect(problems({ KAFKA_TLS_CA_FILE: '/etc/kafka/missing.pem' })).toEqual([
      { setting: 'KAFKA_TLS_CA_FILE', issue: 'cannot be read (/etc/kafka/missing.pem: ENOENT)' },
    ]);
    expect(problems({ KAFKA_TLS_CA_FILE: '/etc/kafka/garbage' })).toEqual([
      { setting: 'KAFKA_TLS_CA_FILE', issue: '/etc/kafka/garbage holds no PEM certificate' },
    ]);
    expect(
      problems({ KAFKA_TLS_CERT_FILE: '/etc/kafka/client.crt', KAFKA_TLS_KEY_FILE: '/etc/kafka/other.key' }),
    ).toEqual([
      { setting: 'KAFKA_TLS_KEY_FILE', issue: expect.stringContaining('private key of the certificate') },
    ]);
    expect(
      problems({ KAFKA_TLS_CERT_FILE: '/etc/kafka/client.key', KAFKA_TLS_KEY_FILE: '/etc/kafka/client.key' }),
    ).toEqual([{ setting: 'KAFKA_TLS_CERT_FILE', issue: expect.stringContaining('PEM certificates') }]);
  });

  it('never puts the password in an error', () => {
    const refusals = [
      { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_PASSWORD: PASSWORD },
      { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'gateway', KAFKA_SASL_PASSWORD: PASSWORD },
      {
        KAFKA_SASL_USERNAME: 'gateway',
        KAFKA_SASL_PASSWORD: PASSWORD,
        KAFKA_TLS_CA_FILE: '/etc/kafka/garbage',
      },
    ];
    for (const env of refusals) {
      let error: unknown;
      try {
        security(env);
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(SettingsError);
      expect(JSON.stringify((error as SettingsError).problems) + (error as Error).message).not.toContain(
        PASSWORD,
      );
    }
  });

  it('warns at start when the clients authenticate but the connections are not encrypted', () => {
    const scram = {
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'gateway',
      KAFKA_SASL_PASSWORD: PASSWORD,
    };
    const warning = (env: Record<string, string>) =>
      kafkaSecurityWarning(parseSettings(snapshotBusSettings, env));
    expect(warning(scram)).toMatch(/not encrypted.*KAFKA_TLS=true/);
    expect(warning({ ...scram, KAFKA_TLS: 'true' })).toBeUndefined();
    expect(warning({ ...scram, KAFKA_TLS_CA_FILE: '/etc/kafka/ca.pem' })).toBeUndefined();
    expect(warning({})).toBeUndefined();
  });
});
