import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLineOf } from '../testing/access-lines.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

const HOST = 'early.localhost';
const MAX_BODY_BYTES = 100_000;
const MEGABYTE = Buffer.alloc(1_000_000, 'x');

interface EarlyAnswer {
  status: number;
  body: string;
  /** The stream's RST_STREAM code once it closed. */
  rstCode: number;
}

/**
 * A POST whose body is `MEGABYTE` (with a content-length when `declared`), its end sent only with
 * `end`: a client still uploading when its answer comes. With `afterHead`, the body starts with a
 * kilobyte and the megabyte goes out once the answer's head came. Resolves once the stream closed.
 */
function upload(
  session: ClientHttp2Session,
  host: string,
  path: string,
  { declared, end, afterHead = false }: { declared: boolean; end: boolean; afterHead?: boolean },
): Promise<EarlyAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      [constants.HTTP2_HEADER_AUTHORITY]: host,
      ...(declared ? { 'content-length': String(MEGABYTE.length) } : {}),
    });
    let status = 0;
    const chunks: Buffer[] = [];
    const sendRest = () => (end ? stream.end(MEGABYTE) : stream.write(MEGABYTE));
    stream.on('response', (headers) => {
      status = Number(headers[constants.HTTP2_HEADER_STATUS]);
      if (afterHead) sendRest();
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('close', () =>
      resolve({ status, body: Buffer.concat(chunks).toString(), rstCode: stream.rstCode ?? -1 }),
    );
    if (afterHead) stream.write(MEGABYTE.subarray(0, 1000));
    else sendRest();
  });
}

/**
 * A request answered before its body was read whole (no tenant, a refusal, a limit, an origin's early
 * answer) while its client is still sending: the client gets the whole answer, then RST_STREAM
 * NO_ERROR (RFC 9113 §8.1), which tells it to stop sending, as nginx and Envoy do — never a stream left
 * open, its window shut, until the request timeout.
 */
describe('HTTP/2 requests answered before their body was sent', () => {
  let gateway: TestGateway;
  let early: HttpOrigin;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    // An origin refusing every upload at once, without reading it.
    early = await startHttpOrigin((_req, res) => {
      res.writeHead(413, { 'content-type': 'text/plain' }).end('refused by the origin');
    });
    gateway = await startTestGateway({
      GATEWAY_H2C: 'true',
      GATEWAY_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'early',
        origins: [{ id: originId, targets: [early.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/limited/*', max_body_bytes: 1000 },
          { origin_id: originId, path_pattern: '/refusing' },
          { origin_id: originId, path_pattern: '/keyed', auth_mode: 'apikey_required' },
        ],
      }),
    );
    // node's client counts what it never sent of each reset stream against its session memory for as
    // long as the session lives (10 MB by default); these tests are about the gateway's streams.
    session = connect(gateway.url, { maxSessionMemory: 100 });
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await early?.close();
  });

  it('20 uploads of 1 MB on one connection to a host with no tenant: each answered 404, then reset NO_ERROR', async () => {
    const answers: EarlyAnswer[] = [];
    for (let i = 0; i < 20; i++)
      answers.push(await upload(session, 'nobody.localhost', '/upload', { declared: true, end: true }));
    expect(answers.map(({ status, rstCode }) => ({ status, rstCode }))).toEqual(
      answers.map(() => ({ status: 404, rstCode: constants.NGHTTP2_NO_ERROR })),
    );
    expect(JSON.parse(answers[0]!.body).error).toMatchObject({ code: 'tenant_not_found' });
  });

  it('an upload refused by authentication: 401, then reset NO_ERROR', async () => {
    const answer = await upload(session, HOST, '/keyed', { declared: false, end: true });
    expect(answer).toMatchObject({ status: 401, rstCode: constants.NGHTTP2_NO_ERROR });
  });

  it('a declared body over the limit: 413, then reset NO_ERROR', async () => {
    const answer = await upload(session, HOST, '/limited/declared', { declared: true, end: true });
    expect(answer).toMatchObject({ status: 413, rstCode: constants.NGHTTP2_NO_ERROR });
    expect(JSON.parse(answer.body).error).toMatchObject({ code: 'payload_too_large' });
  });

  it("a body of unknown length over the route's limit, its client still sending: 413, then reset NO_ERROR", async () => {
    const answer = await within(
      upload(session, HOST, '/limited/unknown-length', { declared: false, end: false }),
      10_000,
      'the stream closing after its 413',
    );
    expect(answer).toMatchObject({ status: 413, rstCode: constants.NGHTTP2_NO_ERROR });
    expect(JSON.parse(answer.body).error).toMatchObject({ code: 'payload_too_large' });
    expect(await accessLineOf(gateway, '/limited/unknown-length')).toMatchObject({ status: 413 });
  });

  it('an origin answering before it read a body of unknown length, its client sending past the body limit: the answer, then reset NO_ERROR', async () => {
    const answer = await within(
      upload(session, HOST, '/refusing', { declared: false, end: false, afterHead: true }),
      10_000,
      "the stream closing after the origin's answer",
    );
    expect(answer).toEqual({
      status: 413,
      body: 'refused by the origin',
      rstCode: constants.NGHTTP2_NO_ERROR,
    });
  });
});
