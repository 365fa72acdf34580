import { type ClientHttp2Session, connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { within } from '../testing/raw-connections.js';

/**
 * GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS closes a session without streams, whatever control frames the client
 * sends: PINGs or SETTINGS now and then must not keep a session, and its GATEWAY_MAX_CONNECTIONS slot,
 * for ever (as blank lines do not keep an idle HTTP/1.1 connection).
 */
const IDLE_TIMEOUT_MS = 1_000;

let gateway: TestGateway;
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  gateway = await startTestGateway({
    GATEWAY_H2C: 'true',
    GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS: String(IDLE_TIMEOUT_MS / 1000),
  });
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await gateway?.close();
});

function idleSessionKeptBusy(frame: (session: ClientHttp2Session) => void): Promise<void> {
  const session = connect(gateway.url);
  session.on('error', () => {});
  sessions.push(session);
  const keepBusy = setInterval(() => {
    if (!session.closed && !session.destroyed) frame(session);
  }, IDLE_TIMEOUT_MS / 5);
  return new Promise<void>((resolve) =>
    session.once('close', () => {
      clearInterval(keepBusy);
      resolve();
    }),
  );
}

describe('idle HTTP/2 sessions', () => {
  it('a session with no stream is closed at the idle timeout although the client keeps sending PINGs', async () => {
    const closed = idleSessionKeptBusy((session) => session.ping(() => {}));
    await expect(within(closed, 5 * IDLE_TIMEOUT_MS, 'the pinging session closed')).resolves.toBeUndefined();
  });

  it('a session with no stream is closed at the idle timeout although the client keeps sending SETTINGS', async () => {
    let toggle = false;
    const closed = idleSessionKeptBusy((session) => {
      toggle = !toggle;
      session.settings({ enablePush: toggle });
    });
    await expect(
      within(closed, 5 * IDLE_TIMEOUT_MS, 'the session sending SETTINGS closed'),
    ).resolves.toBeUndefined();
  });
});
