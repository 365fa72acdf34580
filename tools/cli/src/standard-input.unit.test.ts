import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from './exit-codes.js';
import { readStandardInput } from './standard-input.js';

/**
 * `-f -` reads the document from standard input, which may be a pipe from anywhere (`curl … |`): it is
 * read up to the bound a document file is, never buffered without end.
 */
describe('standard input', () => {
  it('stops reading an endless stream at the bound: exit 2 naming the bound, the stream closed', async () => {
    let chunks = 0;
    const endless = new Readable({
      read() {
        chunks++;
        this.push(Buffer.alloc(256, 0x61));
      },
    });
    const error = await readStandardInput(endless, 1024).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT.usage);
    expect((error as CliError).message).toBe(
      'standard input holds more than 1024 bytes, the most the CLI reads of it',
    );
    expect(endless.destroyed).toBe(true);
    expect(chunks).toBeLessThan(20);
  });

  it('reads what fits the bound as UTF-8 text', async () => {
    expect(
      await readStandardInput(Readable.from([Buffer.from('tenant:\n  name: caf'), Buffer.from('é\n')]), 1024),
    ).toBe('tenant:\n  name: café\n');
  });
});
