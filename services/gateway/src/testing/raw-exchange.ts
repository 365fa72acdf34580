import net from 'node:net';

/** One HTTP/1.x response as read off a raw connection (latin1 text, body de-chunked). */
export interface RawResponse {
  status: number;
  statusLine: string;
  /** Field names lower-case, each line's value in order. */
  headers: ReadonlyMap<string, readonly string[]>;
  body: string;
}

/** The `error.code` of a gateway's JSON error answer; undefined for any other body. */
export function errorCodeOf(response: RawResponse): string | undefined {
  try {
    const code = (JSON.parse(response.body) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

export interface RawExchange {
  /** Final responses in order; interim (1xx) ones are left out. */
  responses: RawResponse[];
  /** Bytes after the last response that could be read in full (a cut or unparseable answer). */
  unread: string;
  /** False when the connection was still open at the deadline (nothing more arrived, no close). */
  closed: boolean;
}

/**
 * Writes `bytes` on a fresh connection and reads until the peer closes it or `deadlineMs` passes; then
 * reads the responses. `methods` are those of the requests written, in order (a HEAD answer has no body).
 * `localAddress` (127.0.0.2, …) connects from another loopback address: another client to the gateway.
 */
export async function rawExchange(
  port: number,
  bytes: Buffer,
  methods: readonly string[],
  deadlineMs: number,
  localAddress?: string,
): Promise<RawExchange> {
  const { text, closed } = await readAfterWriting(port, [bytes], 0, deadlineMs, localAddress);
  return { ...readResponses(text, methods), closed };
}

/**
 * As rawExchange, the bytes written in `pieces` with `pauseMs` between two: what a client on a slow or
 * busy link sends (the deadline runs from the first write).
 */
export async function rawExchangeInPieces(
  port: number,
  pieces: readonly Buffer[],
  pauseMs: number,
  methods: readonly string[],
  deadlineMs: number,
): Promise<RawExchange> {
  const { text, closed } = await readAfterWriting(port, pieces, pauseMs, deadlineMs);
  return { ...readResponses(text, methods), closed };
}

/** The first final response to `request` (latin1), written on a connection of its own (2 s at most). */
export async function firstRawResponse(
  port: number,
  request: string,
  method = 'GET',
): Promise<RawResponse | undefined> {
  const { responses } = await rawExchange(port, Buffer.from(request, 'latin1'), [method], 2_000);
  return responses[0];
}

/**
 * What a client reads (latin1, interim answers and all) after writing `request` on a connection of its
 * own, until the peer closes it (or `deadlineMs` passes: what arrived by then).
 */
export async function receivedUntilClosed(
  port: number,
  request: string,
  deadlineMs = 10_000,
): Promise<string> {
  return (await readAfterWriting(port, [Buffer.from(request, 'latin1')], 0, deadlineMs)).text;
}

/**
 * Writes `pieces` on a fresh connection (`pauseMs` between two, none once the peer closed) and reads
 * until the peer closes it or `deadlineMs` passes: the text read, and whether the peer closed the
 * connection by then.
 */
function readAfterWriting(
  port: number,
  pieces: readonly Buffer[],
  pauseMs: number,
  deadlineMs: number,
  localAddress?: string,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({
      port,
      host: '127.0.0.1',
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(finish, deadlineMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
    const writeFrom = (index: number): void => {
      if (socket.destroyed) return;
      socket.write(pieces[index]!);
      if (index + 1 < pieces.length) setTimeout(() => writeFrom(index + 1), pauseMs);
    };
    writeFrom(0);
  });
}

/** The complete responses at the start of `text`, and what could not be read as one. */
export function readResponses(
  text: string,
  methods: readonly string[],
): { responses: RawResponse[]; unread: string } {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const [statusLine = '', ...lines] = text.slice(at, headEnd).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)?.[1] ?? Number.NaN);
    if (Number.isNaN(status)) break;
    const headers = new Map<string, string[]>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    const bodyStart = headEnd + 4;
    if (status < 200) {
      at = bodyStart;
      continue;
    }
    const method = methods[responses.length] ?? 'GET';
    const body = readBody(text, bodyStart, headers, method === 'HEAD' || status === 204 || status === 304);
    if (body === undefined) break;
    responses.push({ status, statusLine, headers, body: body.body });
    at = body.end;
  }
  return { responses, unread: text.slice(at) };
}

function readBody(
  text: string,
  start: number,
  headers: ReadonlyMap<string, readonly string[]>,
  none: boolean,
): { body: string; end: number } | undefined {
  if (none) return { body: '', end: start };
  if (headers.get('transfer-encoding')?.join(',').toLowerCase().includes('chunked')) {
    let body = '';
    let at = start;
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(text.slice(at, lineEnd), 16);
      if (Number.isNaN(size)) return undefined;
      at = lineEnd + 2;
      if (size === 0) {
        const trailerEnd = text.indexOf('\r\n', at);
        return trailerEnd < 0 ? undefined : { body, end: trailerEnd + 2 };
      }
      if (text.length < at + size + 2) return undefined;
      body += text.slice(at, at + size);
      at += size + 2;
    }
  }
  const length = headers.get('content-length')?.[0];
  if (length === undefined) return { body: text.slice(start), end: text.length };
  const end = start + Number(length);
  return end > text.length ? undefined : { body: text.slice(start, end), end };
}
