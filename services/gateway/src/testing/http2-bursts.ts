import http2 from 'node:http2';
import type { TestGateway } from './gateway-harness.js';

export interface Http2Burst {
  readonly sessions: number;
  readonly streamsPerSession: number;
  readonly headers: http2.OutgoingHttpHeaders;
}

/**
 * Every stream of the burst sent at once, as one HTTP/2 client can: `sessions` connections (h2c) each
 * opening `streamsPerSession` streams in one go. The answers tallied by status and error code
 * (`"429 rate_limited"`, `"200 "`).
 */
export async function sendHttp2Burst(
  gateway: TestGateway,
  burst: Http2Burst,
): Promise<Record<string, number>> {
  const sessions = await Promise.all(
    Array.from(
      { length: burst.sessions },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const session = http2.connect(`http://127.0.0.1:${gateway.gateway.trafficPort}`);
          session.once('remoteSettings', () => resolve(session));
          session.once('error', reject);
        }),
    ),
  );
  const tally: Record<string, number> = {};
  const answers: Array<Promise<void>> = [];
  for (const session of sessions) {
    for (let i = 0; i < burst.streamsPerSession; i++) {
      answers.push(
        new Promise<void>((resolve) => {
          const stream = session.request(burst.headers);
          let status = '';
          let body = '';
          stream.on('response', (headers) => {
            status = String(headers[':status']);
          });
          stream.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          stream.on('error', () => resolve());
          stream.on('close', () => {
            const answer = `${status} ${/"code":"([a-z_]+)"/.exec(body)?.[1] ?? ''}`;
            tally[answer] = (tally[answer] ?? 0) + 1;
            resolve();
          });
          stream.end();
        }),
      );
    }
  }
  await Promise.all(answers);
  for (const session of sessions) session.close();
  return tally;
}
