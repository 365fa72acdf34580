import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectHttp2,
  type IncomingHttpHeaders as Http2Headers,
} from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { startTestGateway, type TestGateway } from './gateway-harness.js';
import { within } from './raw-connections.js';

/** A masked client text frame (RFC 6455 §5.2), short payloads only. */
export function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** A masked client close frame with code 1000. */
export const CLIENT_CLOSE = (() => {
  const mask = randomBytes(4);
  const code = Buffer.from([0x03, 0xe8]); // 1000
  return Buffer.concat([Buffer.from([0x88, 0x82]), mask, Buffer.from(code.map((b, i) => b ^ mask[i]!))]);
})();

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** A WebSocket over one HTTP/2 stream, reading the origin's (unmasked) frames as they arrive. */
export class Http2WebSocket {
  readonly frames: ServerFrame[] = [];
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  readonly ended: Promise<void>;

  constructor(readonly stream: ClientHttp2Stream) {
    stream.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    this.ended = new Promise((resolve) => stream.once('close', () => resolve()));
    stream.once('close', () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  #parse(): void {
    for (;;) {
      if (this.#buffer.length < 2) return;
      let length = this.#buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.#buffer.length < 4) return;
        length = this.#buffer.readUInt16BE(2);
        offset = 4;
      }
      if (this.#buffer.length < offset + length) return;
      this.frames.push({
        opcode: this.#buffer[0]! & 0x0f,
        payload: this.#buffer.subarray(offset, offset + length),
      });
      this.#buffer = this.#buffer.subarray(offset + length);
      for (const wake of this.#waiters.splice(0)) wake();
    }
  }

  /** The next frame not read yet. */
  async nextFrame(): Promise<ServerFrame> {
    while (this.frames.length === 0) {
      if (this.stream.closed) throw new Error(`the stream closed (RST_STREAM ${this.stream.rstCode})`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.frames.shift()!;
  }

  /** The text of the next frame not read yet. */
  async nextText(): Promise<string> {
    return (await this.nextFrame()).payload.toString();
  }

  /** The code and reason of the first close frame not read yet (other frames before it are skipped). */
  async closeFrame(): Promise<{ code: number; reason: string }> {
    for (;;) {
      const frame = await this.nextFrame();
      if (frame.opcode === 0x8)
        return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString() };
    }
  }

  send(text: string): void {
    this.stream.write(clientTextFrame(text));
  }
}

export type Attempt =
  | { status: 200; headers: Http2Headers; socket: Http2WebSocket }
  | { status: number; headers: Http2Headers; body: string };

/**
 * An extended CONNECT on `session` (a plain one when `protocol` is null), with its answer. `extra`
 * may name another `:authority` than chat.localhost.
 */
export async function extendedConnect(
  session: ClientHttp2Session,
  path: string,
  extra: Record<string, string> = {},
  protocol: string | null = 'websocket',
): Promise<Attempt> {
  // The scheme a browser names: its connection's (https over TLS), known once it is connected.
  if (session.connecting) await once(session, 'connect');
  const scheme = session.encrypted ? 'https' : 'http';
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'CONNECT',
      ...(protocol === null ? {} : { ':protocol': protocol, ':scheme': scheme, ':path': path }),
      ':authority': 'chat.localhost',
      'sec-websocket-version': '13',
      ...extra,
    });
    stream.once('error', reject);
    stream.once('response', (headers) => {
      const status = Number(headers[':status']);
      if (status === 200) {
        resolve({ status, headers, socket: new Http2WebSocket(stream) });
        return;
      }
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      stream.once('end', () => resolve({ status, headers, body }));
    });
  });
}

export function opened(attempt: Attempt): Http2WebSocket {
  if (!('socket' in attempt)) throw new Error(`refused ${attempt.status}: ${attempt.body}`);
  return attempt.socket;
}

/** The refusal's `error` object (its JSON body), or a failure when the WebSocket opened. */
export function refusalError(attempt: Attempt): { code: string; message: string } {
  if (!('body' in attempt)) throw new Error('the WebSocket opened');
  return JSON.parse(attempt.body).error;
}

/** An HTTP/2 session to `url` once its SETTINGS arrived, with whether they offer extended CONNECT. */
export async function openSession(url: string): Promise<{ session: ClientHttp2Session; offered: boolean }> {
  const session = connectHttp2(url, { rejectUnauthorized: false });
  session.on('error', () => {});
  const settings = await within(
    new Promise<{ enableConnectProtocol?: boolean }>((resolve) => session.once('remoteSettings', resolve)),
    5_000,
    'the gateway’s SETTINGS',
  );
  return { session, offered: settings.enableConnectProtocol === true };
}

export interface TlsTestGateway extends TestGateway {
  /** The TLS listener, where clients choose h2 by ALPN. */
  readonly tlsUrl: string;
}

/** A test gateway with a TLS listener (a self-signed *.localhost certificate) beside its plain one. */
export async function startTlsTestGateway(
  env: Record<string, string> = {},
  extra: Parameters<typeof startTestGateway>[1] = {},
): Promise<TlsTestGateway> {
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  const dir = await mkdtemp(path.join(tmpdir(), 'gateway-h2-websockets-'));
  await writeFile(path.join(dir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(dir, 'key.pem'), certificate.privateKeyPem);
  try {
    const gateway = await startTestGateway(
      {
        GATEWAY_TLS_PORT: '0',
        GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
        GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
        ...env,
      },
      extra,
    );
    return {
      ...gateway,
      tlsUrl: `https://127.0.0.1:${gateway.gateway.tlsPort}`,
      close: async () => {
        await gateway.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
