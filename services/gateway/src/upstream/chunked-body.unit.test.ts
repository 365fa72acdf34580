import { createServer } from 'node:net';
import { Client } from 'undici';
import { describe, expect, it } from 'vitest';
import { headSaysChunked } from './chunked-body.js';

/** How a head's Transfer-Encoding fields read as an expression over the head's text. */
function readByExpression(head: string): boolean {
  let chunked = false;
  for (const field of head.matchAll(/\ntransfer-encoding:([^\r\n]*)/gi)) {
    if (/[^ \t]/.test(field[1]!)) chunked = /(?:^|,)[ \t]*chunked *$/i.test(field[1]!);
  }
  return chunked;
}

const NAMES = [
  'Transfer-Encoding',
  'transfer-encoding',
  'TRANSFER-ENCODING',
  'tRaNsFeR-eNcOdInG',
  'Transfer_Encoding',
  'Transfer-Encodin',
  'Transfer-Encodings',
  'X-Transfer-Encoding',
  'Transfer-Encoding ',
  'Tr\xe1nsfer-Encoding',
  'Transfer\x0dEncoding',
];
const VALUES = [
  'chunked',
  ' chunked',
  'gzip, chunked',
  'chunked, gzip',
  ' CHUNKED ',
  '',
  ' , ',
  'gzip',
  'chunked\t,',
];
const ENDS = ['\r\n', '\n'];

describe('headSaysChunked', () => {
  it('reads every head as the field expression does: names in any ASCII case, values, repeated fields', () => {
    const heads: string[] = [];
    for (const name of NAMES)
      for (const value of VALUES)
        for (const end of ENDS) {
          const line = `${name}:${value}${end}`;
          heads.push(`HTTP/1.1 200 OK${end}${line}${end}`);
          heads.push(
            `HTTP/1.1 200 OK${end}Content-Type: text/plain${end}${line}Transfer-Encoding: gzip${end}${end}`,
          );
          heads.push(`HTTP/1.1 200 OK${end}Transfer-Encoding: gzip${end}${line}X: y${end}${end}`);
          heads.push(`HTTP/1.1 200 OK${end}${line}${line}${end}`);
          heads.push(`HTTP/1.1 200 OK${end}${name}:${value}`);
        }
    heads.push(
      'HTTP/1.1 200 OK\r\n\ntransfer-encoding:chunked\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding:',
      'HTTP/1.1 200 OK\n',
    );
    let chunkedHeads = 0;
    for (const head of heads) {
      const expected = readByExpression(head);
      if (expected) chunkedHeads++;
      expect(headSaysChunked(head), JSON.stringify(head)).toBe(expected);
    }
    expect(chunkedHeads).toBeGreaterThan(50);
  });

  it('reads a body as chunked exactly when undici does, whatever the Transfer-Encoding fields', async () => {
    const fieldSets = [
      ['chunked'],
      ['\tchunked'],
      ['chunked '],
      ['chunked\t'],
      ['chunked,'],
      ['chunked ,'],
      ['chunked, '],
      ['chunked,,'],
      ['chunked,\t'],
      [', chunked'],
      ['gzip,chunked'],
      ['gzip ,\t chunked'],
      ['gzip chunked'],
      ['chunked, gzip'],
      ['chunked;q=1'],
      ['"chunked"'],
      ['CHUNKED'],
      ['gzip', 'chunked'],
      ['chunked', 'gzip'],
      ['chunked', ''],
      ['chunked', '  '],
      ['chunked', ','],
      ['chunked', ' , '],
      ['chunked', '\xa0'],
    ];
    // The answer's body, framed as chunks, then the connection's end: undici reads it as chunks (its
    // data and trailer apart) or as data to the close.
    const body = '5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n';
    let answer = '';
    const origin = createServer((socket) => socket.once('data', () => socket.end(answer, 'latin1')));
    await new Promise<void>((listening) => origin.listen(0, '127.0.0.1', listening));
    const { port } = origin.address() as { port: number };
    try {
      for (const fields of fieldSets) {
        const head = `HTTP/1.1 200 OK\r\n${fields.map((value) => `Transfer-Encoding: ${value}\r\n`).join('')}\r\n`;
        answer = head + body;
        const client = new Client(`http://127.0.0.1:${port}`);
        const response = await client.request({ path: '/', method: 'GET' });
        const read = await response.body.text();
        await client.close();
        expect(read === 'hello', JSON.stringify(fields)).toBe(read !== body);
        expect(headSaysChunked(head), JSON.stringify(fields)).toBe(read === 'hello');
      }
    } finally {
      origin.close();
    }
  });
});
