import http2 from 'node:http2';
import { Session } from 'node:inspector/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';

/**
 * A client that opens HTTP/2 sessions and closes them at once (no tenant, no credentials needed) must
 * leave nothing behind: node kept each destroyed session, with its socket, while the idle timer the
 * gateway sets on every session (GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS, 120 s) was still to fire — about
 * 6 KB a session, gigabytes at the rate one client opens them.
 */
const SESSIONS = 200;

let gateway: TestGateway;
let inspector: Session;
/** The server side's session prototype, whose instances the heap is asked for. */
let serverSessionPrototype: string;

/** ServerHttp2Session instances alive in this process (the heap is collected first). */
async function serverSessionsAlive(): Promise<number> {
  const { objects } = await inspector.post('Runtime.queryObjects', {
    prototypeObjectId: serverSessionPrototype,
  });
  const { result } = await inspector.post('Runtime.callFunctionOn', {
    objectId: objects.objectId!,
    functionDeclaration: 'function () { return this.length; }',
    returnByValue: true,
  });
  return result.value as number;
}

beforeAll(async () => {
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  inspector = new Session();
  inspector.connect();
  // A session of a server of its own, for the prototype node gives every server session.
  const server = http2.createServer();
  const prototype = new Promise<object>((resolve) =>
    server.once('session', (session) => resolve(Object.getPrototypeOf(session) as object)),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  (globalThis as Record<string, unknown>)['__serverSessionPrototype'] = await prototype;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const { result } = await inspector.post('Runtime.evaluate', {
    expression: 'globalThis.__serverSessionPrototype',
  });
  serverSessionPrototype = result.objectId!;
});

afterAll(async () => {
  delete (globalThis as Record<string, unknown>)['__serverSessionPrototype'];
  inspector?.disconnect();
  await gateway?.close();
});

describe('HTTP/2 sessions a client closes', () => {
  it('are not kept until their idle timeout', async () => {
    const before = await serverSessionsAlive();
    for (let i = 0; i < SESSIONS; i++) {
      await new Promise<void>((resolve) => {
        const session = http2.connect(gateway.url);
        session.on('error', () => {});
        session.once('remoteSettings', () => {
          session.destroy();
          resolve();
        });
      });
    }
    // The server side hears each close a moment later.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await serverSessionsAlive()) - before).toBeLessThan(SESSIONS / 10);
  }, 60_000);
});
