import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * What a client's bytes become in a real gateway's access log, read as operators read it (`tail -f`,
 * `kubectl logs` in a terminal): a User-Agent, and an HTTP/2 :path, may carry any byte 0x80–0xFF (read
 * as the character of that code point), and 0x9B and 0x9D are the C1 controls CSI and OSC, which
 * terminals act on as on ESC [ and ESC ] (node's parsers refuse DEL and the C0 controls but a tab).
 * No such character may be written as it is; the value still reads back as sent.
 */
const SUBDOMAIN = 'log-controls';
// CSI 2 J (clear the screen), OSC 52 (write the clipboard) ended by ST (0x9C), and a printable é.
const USER_AGENT = 'probe/1 \x9b2J \x9d52;c;cGxhbnRlZA==\x9c é';
const C1_CONTROL = /[\u0080-\u009f]/;

let origin: TestOrigin;
let gateway: LoneGateway;

beforeAll(async () => {
  origin = await startOrigin('log-controls');
  const originId = randomUUID();
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/open/*' }],
      }),
    ],
    env: { GATEWAY_H2C: 'true' },
  });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await stopAllServices();
});

/** One HTTP/1.1 request written byte for byte (no client library checks its header values); its status. */
function rawRequest(host: string, requestId: string): Promise<string> {
  const head = Buffer.concat([
    Buffer.from(`GET /open/a HTTP/1.1\r\nHost: ${host}\r\nX-Request-Id: ${requestId}\r\nUser-Agent: `),
    Buffer.from(USER_AGENT, 'latin1'),
    Buffer.from('\r\nConnection: close\r\n\r\n'),
  ]);
  return new Promise((resolve, reject) => {
    const socket = connect(gateway.port, '127.0.0.1', () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1').split(' ')[1] ?? ''));
  });
}

/** The gateway's output line holding `requestId`, as written. */
async function writtenLine(requestId: string): Promise<string> {
  return vi.waitFor(
    () => {
      const line = gateway.service
        .output()
        .split('\n')
        .find((entry) => entry.includes(`"request_id":"${requestId}"`));
      if (line === undefined) throw new Error(`no access-log line for ${requestId} yet`);
      return line;
    },
    { timeout: 20_000, interval: 50 },
  );
}

describe('a User-Agent with C1 controls', () => {
  it.each([
    ['a tenant’s request', `${SUBDOMAIN}.localhost`, '200'],
    ['a request for no tenant', 'nobody.localhost', '404'],
  ])('is written escaped in the line of %s, and reads back as sent', async (_label, host, status) => {
    const requestId = randomUUID();
    expect(await rawRequest(host, requestId)).toBe(status);
    const line = await writtenLine(requestId);
    expect(C1_CONTROL.exec(line)?.[0].codePointAt(0)?.toString(16), 'a raw C1 control in the line').toBe(
      undefined,
    );
    expect(JSON.parse(line)).toMatchObject({ status: Number(status), user_agent: USER_AGENT });
  });
});

describe('an HTTP/2 :path with C1 controls', () => {
  // A tenant's path is logged normalised (percent-encoded); one for no tenant as it came.
  it('is written escaped in the line of a request for no tenant, and reads back as sent', async () => {
    const session = http2Connect(gateway.url);
    try {
      const requestId = randomUUID();
      const path = '/open/\x9b2J\x9d52;c;cGxhbnRlZA==\x9c';
      const answer = await http2Request(session, {
        path,
        authority: 'nobody.localhost',
        headers: { 'x-request-id': requestId },
      });
      expect(answer.status).toBe(404);
      const line = await writtenLine(requestId);
      expect(C1_CONTROL.exec(line)?.[0].codePointAt(0)?.toString(16), 'a raw C1 control in the line').toBe(
        undefined,
      );
      expect(JSON.parse(line)).toMatchObject({ path });
    } finally {
      session.close();
    }
  });
});
