import http2 from 'node:http2';
import { liveBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { compactRequestData } from './http2-request-data.js';

/**
 * Small DATA frames copied into blocks still reach every kind of reader as they come: an interactive
 * stream (each side waits for the other's answer) would otherwise stop with bytes held in a block.
 */
describe('small request DATA frames copied into blocks', () => {
  const closing: Array<() => void> = [];
  afterEach(() => {
    for (const close of closing.splice(0)) close();
  });

  /**
   * A server echoing what `read` takes, and a client sending two one-byte frames after each echo it gets:
   * the bytes echoed by the 40th echo (fewer when the stream stopped, after 5 s).
   */
  async function echoRounds(read: (stream: http2.ServerHttp2Stream) => void): Promise<number> {
    const server = http2.createServer();
    server.on('session', (session) => compactRequestData(session));
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      read(stream);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    closing.push(
      () => client.destroy(),
      () => server.close(),
    );
    const request = client.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
    const ROUNDS = 40;
    return new Promise<number>((resolve) => {
      let echoed = 0;
      let answered = 0;
      const stalled = setTimeout(() => resolve(echoed), 5_000);
      request.on('data', (chunk: Buffer) => {
        echoed += chunk.length;
        if (++answered >= ROUNDS) {
          clearTimeout(stalled);
          resolve(echoed);
          return;
        }
        request.write('a');
        request.write('b');
      });
      request.write('a');
      request.write('b');
    });
  }

  it("reaches a reader taking one byte on each 'readable'", async () => {
    const echoed = await echoRounds((stream) =>
      stream.on('readable', () => {
        const chunk = stream.read(1) as Buffer | null;
        if (chunk !== null) stream.write(chunk);
      }),
    );
    expect(echoed).toBeGreaterThanOrEqual(40);
  });

  it('reaches a flowing reader, and one that reads once its stream was paused a while', async () => {
    const flowing = await echoRounds((stream) => stream.on('data', (chunk: Buffer) => stream.write(chunk)));
    expect(flowing).toBeGreaterThanOrEqual(40);
    const afterPause = await echoRounds((stream) => {
      stream.pause();
      setTimeout(() => {
        stream.on('data', (chunk: Buffer) => stream.write(chunk));
        stream.resume();
      }, 50);
    });
    expect(afterPause).toBeGreaterThanOrEqual(40);
  });

  it('holds a small unread body in about its own bytes, not a whole block per stream', async () => {
    const STREAMS = 200;
    const server = http2.createServer({ settings: { maxConcurrentStreams: STREAMS } });
    const held: http2.ServerHttp2Stream[] = [];
    server.on('session', (session) => compactRequestData(session));
    // Each request waits unread (in a stage, for an origin connection).
    server.on('stream', (stream) => held.push(stream));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    closing.push(
      () => client.destroy(),
      () => server.close(),
    );
    await new Promise<void>((resolve) => client.once('remoteSettings', () => resolve()));
    const before = liveBufferBytes();
    for (let i = 0; i < STREAMS; i++) {
      client.request({ ':method': 'POST', ':path': '/' }, { endStream: false }).write('x');
    }
    await expect
      .poll(() => held.length === STREAMS && held.every((stream) => stream.readableLength === 1))
      .toBe(true);
    // 200 bytes of bodies, about 1 KiB each held (a first block); a 16 KiB block each was 3.2 MB.
    expect(liveBufferBytes() - before).toBeLessThan(STREAMS * 2048);
  });
});
