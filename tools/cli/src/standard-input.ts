import type { Readable } from 'node:stream';
import { sizeText } from './answer-reader.js';
import { CliError, EXIT } from './exit-codes.js';

/**
 * Standard input as UTF-8 text, read up to `maxBytes` (a document file's bound: `-f -` may be a pipe
 * from anywhere); past it the stream is closed and the command ends with exit 2.
 */
export async function readStandardInput(stream: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    bytes += buffer.length;
    if (bytes > maxBytes) {
      stream.destroy();
      throw new CliError(
        EXIT.usage,
        `standard input holds more than ${sizeText(maxBytes)}, the most the CLI reads of it`,
      );
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
