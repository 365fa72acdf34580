import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

/**
 * A tiny authoritative DNS responder over UDP for tests (RFC 1035 wire format): it answers TXT
 * queries from a table the test fills, NXDOMAIN for names it does not know, and an empty NOERROR for
 * other record types. Point a resolver at `address` (e.g. DNS_RESOLVER=127.0.0.1:PORT).
 */
export interface TestDnsServer {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** Sets (or with an empty list removes) the TXT values of a name; names are case-insensitive. */
  setTxt(name: string, values: readonly string[]): void;
  /** Names queried so far (lower-case), in order. */
  readonly queries: string[];
  close(): Promise<void>;
}

const TYPE_TXT = 16;
const CLASS_IN = 1;

interface Question {
  name: string;
  type: number;
  /** Byte offset just after the question (its wire form is copied into the answer). */
  end: number;
}

function readQuestion(message: Buffer): Question | undefined {
  let offset = 12;
  const labels: string[] = [];
  for (;;) {
    const length = message[offset];
    if (length === undefined) return undefined;
    offset += 1;
    if (length === 0) break;
    if (length > 63) return undefined; // no compression in questions we accept
    labels.push(message.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: message.readUInt16BE(offset), end: offset + 4 };
}

/** TXT RDATA: each value as one or more <=255-byte character strings. */
function txtRdata(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let start = 0; start < bytes.length || start === 0; start += 255) {
    const chunk = bytes.subarray(start, start + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
    if (bytes.length === 0) break;
  }
  return Buffer.concat(parts);
}

function answer(query: Buffer, question: Question, records: readonly string[] | undefined): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  const recursionDesired = (query[2] ?? 0) & 0x01;
  header[2] = 0x84 | recursionDesired; // QR, AA, RD copied
  const found = records !== undefined;
  header[3] = found ? 0x00 : 0x03; // NOERROR or NXDOMAIN
  header.writeUInt16BE(1, 4); // QDCOUNT
  const answers = found && question.type === TYPE_TXT ? records : [];
  header.writeUInt16BE(answers.length, 6); // ANCOUNT
  const parts: Buffer[] = [header, query.subarray(12, question.end)];
  for (const value of answers) {
    const rdata = txtRdata(value);
    const record = Buffer.alloc(12);
    record.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    record.writeUInt16BE(TYPE_TXT, 2);
    record.writeUInt16BE(CLASS_IN, 4);
    record.writeUInt32BE(0, 6); // TTL 0: never cached
    record.writeUInt16BE(rdata.length, 10);
    parts.push(record, rdata);
  }
  return Buffer.concat(parts);
}

export async function startTestDnsServer(): Promise<TestDnsServer> {
  const records = new Map<string, string[]>();
  const queries: string[] = [];
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, remote) => {
    const question = readQuestion(message);
    if (!question) return;
    queries.push(question.name);
    socket.send(answer(message, question, records.get(question.name)), remote.port, remote.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    queries,
    setTxt(name, values) {
      const key = name.toLowerCase();
      if (values.length === 0) records.delete(key);
      else records.set(key, [...values]);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
