import { type ClientHttp2Session, connect as connectHttp2, constants } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as connectTls, type SecureVersion, type TLSSocket } from 'node:tls';

/**
 * Clients for tests of a TLS endpoint: a bare handshake that reports the certificate served for a
 * server name, and HTTP/2 and HTTPS/1.1 requests with an explicit authority. Certificates are not
 * verified against a CA unless `ca` is given (tests look at what was served).
 */

export interface HandshakeResult {
  /** SHA-256 fingerprint of the leaf the server presented (X509Certificate.fingerprint256 format). */
  fingerprint256: string;
  /** The leaf's subjectAltName as node prints it. */
  subjectAltName: string;
  protocol: string | null;
  alpnProtocol: string | false;
  /** True when `ca` was given and the chain verified for the server name. */
  authorized: boolean;
}

export interface HandshakeOptions {
  port: number;
  host?: string;
  /** SNI; omitted entirely when null. */
  servername: string | null;
  ca?: string;
  ALPNProtocols?: string[];
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
  /** The signature algorithms the client accepts (e.g. an ECDSA-only client). */
  sigalgs?: string;
}

export function tlsHandshake(options: HandshakeOptions): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({
      host: options.host ?? '127.0.0.1',
      port: options.port,
      ...(options.servername === null ? {} : { servername: options.servername }),
      rejectUnauthorized: false,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.ALPNProtocols ? { ALPNProtocols: options.ALPNProtocols } : {}),
      ...(options.minVersion ? { minVersion: options.minVersion } : {}),
      ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
      ...(options.ciphers ? { ciphers: options.ciphers } : {}),
      ...(options.sigalgs ? { sigalgs: options.sigalgs } : {}),
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      resolve({
        fingerprint256: peer.fingerprint256,
        subjectAltName: peer.subjectaltname ?? '',
        protocol: socket.getProtocol(),
        alpnProtocol: socket.alpnProtocol ?? false,
        authorized: options.ca !== undefined && socket.authorized,
      });
      socket.end();
    });
    socket.once('error', reject);
  });
}

export interface Http2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * An HTTP/2 connection (TLS with ALPN h2 for https:, prior knowledge for http:). `session`: a TLS
 * session of an earlier connection offered for resumption.
 */
export function http2Connect(
  origin: string,
  options: {
    ca?: string;
    servername?: string;
    sigalgs?: string;
    session?: Buffer | undefined;
    maxVersion?: SecureVersion;
  } = {},
): ClientHttp2Session {
  const session = connectHttp2(origin, {
    rejectUnauthorized: options.ca !== undefined,
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.servername ? { servername: options.servername } : {}),
    ...(options.sigalgs ? { sigalgs: options.sigalgs } : {}),
    ...(options.session ? { session: options.session } : {}),
    ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
  });
  session.on('error', () => {});
  return session;
}

export function http2Request(
  session: ClientHttp2Session,
  request: {
    path: string;
    authority: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    timeoutMs?: number;
  },
): Promise<Http2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(
      {
        [constants.HTTP2_HEADER_METHOD]: request.method ?? 'GET',
        [constants.HTTP2_HEADER_PATH]: request.path,
        [constants.HTTP2_HEADER_AUTHORITY]: request.authority,
        ...request.headers,
      },
      // node ends a GET's, HEAD's or DELETE's stream with its HEADERS frame unless told otherwise.
      request.body === undefined ? undefined : { endStream: false },
    );
    const timer = setTimeout(
      () =>
        stream.close(constants.NGHTTP2_CANCEL, () =>
          reject(new Error(`HTTP/2 request timed out: ${request.path}`)),
        ),
      request.timeoutMs ?? 10_000,
    );
    let headers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (received) => {
      headers = received as Record<string, string | string[] | undefined>;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({
        status: Number(headers[constants.HTTP2_HEADER_STATUS] ?? 0),
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    stream.end(request.body);
  });
}

/**
 * One HTTPS/1.1 request (no ALPN offered) with SNI and Host set to `host`. `session`: a TLS session of
 * an earlier request (its `session`) offered for resumption, as browsers and curl offer theirs;
 * `servername`: another SNI than `host` (null: none sent).
 */
export function https1Request(
  port: number,
  host: string,
  path: string,
  options: {
    headers?: Record<string, string>;
    ca?: string;
    method?: string;
    body?: string;
    session?: Buffer | undefined;
    servername?: string | null;
    maxVersion?: SecureVersion;
    /** The signature algorithms the client accepts (e.g. an RSA-only client). */
    sigalgs?: string;
  } = {},
): Promise<
  Http2Response & {
    alpnProtocol: string | false;
    fingerprint256: string;
    session: Buffer | undefined;
    /** The server resumed the session offered. */
    sessionReused: boolean;
  }
> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        // Node sends no SNI for an empty name.
        servername: options.servername === undefined ? host : (options.servername ?? ''),
        headers: { host, ...options.headers },
        rejectUnauthorized: options.ca !== undefined,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.session ? { session: options.session } : {}),
        ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
        ...(options.sigalgs ? { sigalgs: options.sigalgs } : {}),
        agent: false,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const alpnProtocol = socket.alpnProtocol ?? false;
        const fingerprint256 = socket.getPeerCertificate().fingerprint256;
        const sessionReused = socket.isSessionReused();
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            alpnProtocol,
            fingerprint256,
            session,
            sessionReused,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('socket', (socket) =>
      socket.on('session', (ticket: Buffer) => {
        session = ticket;
      }),
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
