/**
 * An admin API answer read with a bound: the CLI may be pointed at something that is not the admin
 * API (a URL typo, a compromised proxy), and an answer of gigabytes must not be buffered whole.
 */

/** The most the CLI reads of one answer, and of all the pages of one list together. */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export class AnswerTooLargeError extends Error {
  override readonly name = 'AnswerTooLargeError';
  constructor(readonly limit: number) {
    super(`the answer is larger than ${sizeText(limit)}, the most the CLI reads`);
  }
}

export function sizeText(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

/** The body as text and its size in bytes; AnswerTooLargeError past `limit` (Content-Length or read). */
export async function readAnswer(
  response: Response,
  limit: number,
): Promise<{ text: string; bytes: number }> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > limit) throw new AnswerTooLargeError(limit);
  if (!response.body) return { text: '', bytes: 0 };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > limit) {
      await reader.cancel().catch(() => {});
      throw new AnswerTooLargeError(limit);
    }
    chunks.push(value);
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)), bytes };
}
