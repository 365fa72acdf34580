import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemsOf } from '../testing/settings-problems.js';
import { createTestCa, type TestCa } from '../testing/test-certificates.js';
import { pemCertificatesProblem, readSettingFile } from './setting-file.js';

let dir: string;
let ca: TestCa;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'setting-file-'));
  ca = await createTestCa('Setting File Test CA');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a file a setting names', () => {
  it('is read, or refused naming the setting, the path and the reason, never its content', () => {
    const file = path.join(dir, 'ca.pem');
    writeFileSync(file, ca.certificatePem);
    expect(readSettingFile('SOME_CA_FILE', file)).toBe(ca.certificatePem);

    const missing = path.join(dir, 'missing.pem');
    expect(problemsOf(() => readSettingFile('SOME_CA_FILE', missing))).toEqual([
      { setting: 'SOME_CA_FILE', issue: `cannot be read (${missing}: ENOENT)` },
    ]);
    expect(problemsOf(() => readSettingFile('SOME_KEY_FILE', dir))).toEqual([
      { setting: 'SOME_KEY_FILE', issue: `cannot be read (${dir}: EISDIR)` },
    ]);
  });

  it('holds CA certificates a TLS client can trust, or says why not', () => {
    expect(pemCertificatesProblem(ca.certificatePem)).toBeUndefined();
    expect(pemCertificatesProblem(ca.privateKeyPem)).toBe('holds no PEM certificate');
    // A block that does not parse: TLS would trust none of the certificates from it on.
    const damaged = ca.certificatePem.replace(/\n[A-Za-z0-9+/]{8}/, '\nAAAAAAAA');
    expect(pemCertificatesProblem(damaged)).toBe(
      'holds a PEM certificate that does not parse (certificate 1 of 1)',
    );
    expect(pemCertificatesProblem(`${ca.certificatePem}\n${damaged}`)).toBe(
      'holds a PEM certificate that does not parse (certificate 2 of 2)',
    );
  });

  it('is refused for any block TLS stops reading at, and taken in every spelling TLS trusts', () => {
    const body = (pem: string) => pem.replace(/-----[A-Z ]+-----\r?\n?/g, '');
    const block = (label: string, text: string) =>
      `-----BEGIN ${label}-----\n${text}-----END ${label}-----\n`;
    const damaged = body(ca.certificatePem).replace(/^[A-Za-z0-9+/]{8}/, 'AAAAAAAA');
    // Node's TLS reads TRUSTED CERTIFICATE and X509 CERTIFICATE blocks as certificates too.
    expect(pemCertificatesProblem(`${block('TRUSTED CERTIFICATE', damaged)}${ca.certificatePem}`)).toBe(
      'holds a PEM certificate that does not parse (certificate 1 of 2)',
    );
    expect(pemCertificatesProblem(`${block('X509 CERTIFICATE', damaged)}${ca.certificatePem}`)).toBe(
      'holds a PEM certificate that does not parse (certificate 1 of 2)',
    );
    expect(pemCertificatesProblem(block('TRUSTED CERTIFICATE', body(ca.certificatePem)))).toBeUndefined();
    // Another kind of block is skipped when it decodes, and ends the reading when it does not.
    expect(
      pemCertificatesProblem(`${block('PRIVATE KEY', body(ca.privateKeyPem))}${ca.certificatePem}`),
    ).toBeUndefined();
    expect(pemCertificatesProblem(`${block('PRIVATE KEY', '!!!!\n')}${ca.certificatePem}`)).toBe(
      'holds a PEM block that does not parse (block 1 of 2)',
    );
    const unended = `-----BEGIN X509 CRL-----\n${body(ca.certificatePem)}-----END CERTIFICATE-----\n`;
    expect(pemCertificatesProblem(`${unended}${ca.certificatePem}`)).toBe(
      'holds a PEM block that does not parse (block 1 of 2)',
    );
    // A bundle cut short: its last certificate would be trusted by no one.
    const cut = ca.certificatePem.slice(0, ca.certificatePem.length / 2);
    expect(pemCertificatesProblem(`${ca.certificatePem}\n${cut}`)).toBe(
      'holds a PEM certificate that does not parse (certificate 2 of 2)',
    );
    // Files joined without a line end between them: TLS reads neither certificate.
    expect(pemCertificatesProblem(`${ca.certificatePem}${ca.certificatePem}`)).toBe(
      'holds a PEM certificate that does not parse (certificate 1 of 1)',
    );
    // Windows line ends and notes between blocks are read past.
    const crlf = ca.certificatePem.replaceAll('\n', '\r\n');
    expect(pemCertificatesProblem(`Subject: a note\r\n${crlf}\r\n# another\r\n${crlf}`)).toBeUndefined();
  });
});
