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
    expect(pemCertificatesProblem(`${ca.certificatePem}${damaged}`)).toBe(
      'holds a PEM certificate that does not parse (certificate 2 of 2)',
    );
  });
});
