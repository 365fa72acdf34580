import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { pause } from '../testing/raw-connections.js';
import { readResponses } from '../testing/raw-exchange.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { MAX_ANSWER_HEADER_LINES } from '../upstream/unasked-continue.js';

/**
 * Chunked origin answers larger than a socket's buffer, to clients that read them in bursts. Regression
 * test: the gateway pauses the origin while its client catches up, and undici then puts back what it had
 * not parsed of its last read, to read it again; the gateway's reading of the origin's answers (which
 * follows chunked bodies to bound their trailer sections) followed those bytes a second time. A CSV
 * column of zeros was taken for a last chunk and a trailer section of too many lines, and the answer
 * was cut in its middle; an answer of other bytes was no longer followed, and its trailer section of
 * thousands of lines was parsed whole.
 */
const HOST = 'bursts.localhost';
const CHUNK_BYTES = 16 * 1024;
const CHUNKS = 256;
/**
 * 16 KiB of a CSV column of zeros, from each of its three bytes (where in the data the second reading
 * of put-back bytes went wrong depends on the reads, not on the data), and of bytes that look like no line.
 */
const CSV = [0, 1, 2].map((phase) =>
  Buffer.from('0\r\n'.repeat(Math.ceil(CHUNK_BYTES / 3) + 1).slice(phase, phase + CHUNK_BYTES), 'latin1'),
);
const PLAIN = Buffer.alloc(CHUNK_BYTES, 'x');

/** The data of each chunk of the answer to `path`: `/csv/<phase>/…`, else PLAIN. */
function dataOf(path: string): Buffer {
  const phase = /^\/csv\/(\d)\//.exec(path)?.[1];
  return phase === undefined ? PLAIN : CSV[Number(phase)]!;
}

let gateway: TestGateway;
let origin: net.Server;

beforeAll(async () => {
  origin = net.createServer((socket) =>
    onRequestHeads(socket, (_head, path) => {
      const data = dataOf(path);
      const chunk = Buffer.concat([
        Buffer.from(`${CHUNK_BYTES.toString(16)}\r\n`),
        data,
        Buffer.from('\r\n'),
      ]);
      const trailers = path.startsWith('/trailer-flood/') ? 'x: v\r\n'.repeat(5_000) : '';
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n');
      let left = CHUNKS;
      const more = (): void => {
        while (left > 0) {
          left -= 1;
          if (!socket.write(chunk)) return void socket.once('drain', more);
        }
        socket.write(`0\r\n${trailers}\r\n`);
      };
      more();
    }),
  );
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  gateway = await startTestGateway();
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'bursts',
      origins: [
        {
          id: originId,
          targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
          timeout_seconds: 30,
        },
      ],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

/**
 * GET `path` on a connection of its own, read in short bursts at first, then at once; what arrived (latin1)
 * once the answer is whole (its last chunk read), the gateway closed the connection, or 15 s passed.
 */
async function readInBursts(path: string): Promise<{ received: string; closed: boolean }> {
  const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('close', () => {
    closed = true;
  });
  socket.pause();
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  for (let burst = 0; burst < 20 && !closed; burst++) {
    await pause(40);
    socket.resume();
    await pause(5);
    socket.pause();
  }
  socket.resume();
  const whole = () => readResponses(Buffer.concat(chunks).toString('latin1'), ['GET']).responses.length > 0;
  for (let waited = 0; waited < 15_000 && !closed && !whole(); waited += 50) await pause(50);
  socket.destroy();
  return { received: Buffer.concat(chunks).toString('latin1'), closed };
}

describe('a chunked answer larger than a socket buffer, to a client reading it in bursts', () => {
  it('reaches the client whole, whatever its data looks like (a CSV column of zeros)', async () => {
    for (const path of ['/csv/0/a', '/csv/1/a', '/csv/2/a', '/plain/a']) {
      const { received } = await readInBursts(path);
      const [answer] = readResponses(received, ['GET']).responses;
      expect(answer?.status, path).toBe(200);
      expect(answer?.body.length, path).toBe(CHUNK_BYTES * CHUNKS);
      expect(answer?.body, path).toBe(dataOf(path).toString('latin1').repeat(CHUNKS));
    }
  });

  it(`is still cut at a trailer section of more than ${MAX_ANSWER_HEADER_LINES} lines: the answer never ends`, async () => {
    for (const path of ['/trailer-flood/1', '/trailer-flood/2']) {
      const { received, closed } = await readInBursts(path);
      expect(received.startsWith('HTTP/1.1 200 OK\r\n'), path).toBe(true);
      expect(readResponses(received, ['GET']).responses, path).toHaveLength(0);
      expect(closed, path).toBe(true);
    }
  });
});
