import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTxtLookup, DnsLookupError } from './dns-txt.js';

/** A name server that never answers: a tenant's zone whose servers stay silent. */
let silent: dgram.Socket;
let queries = 0;

beforeAll(async () => {
  silent = dgram.createSocket('udp4');
  silent.on('message', () => queries++);
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
});

afterAll(() => silent.close());

describe('TXT lookups', () => {
  it('give up at their deadline however many servers and tries are left', async () => {
    // Regression: the resolver's backoff (3 s, then 6 s) and its tries per server made one lookup wait
    // ~10 s per DNS_RESOLVER server (18 s with two), not the ~6 s the README promises.
    const { port } = silent.address() as AddressInfo;
    const lookup = createTxtLookup([`127.0.0.1:${port}`, `127.0.0.1:${port}`], { deadlineMs: 300 });
    const failure = await lookup('_vantageedge-challenge.slow.example').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DnsLookupError);
    expect((failure as DnsLookupError).code).toBe('ETIMEOUT');
    expect(queries).toBeGreaterThan(0);
  }, 2_000);
});
