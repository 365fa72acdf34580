import type { Server } from 'node:http';
import { connect } from 'node:net';
import { closeGracefully } from '@vantageedge/shared/http/graceful-close';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { listenControlPlane } from './listener.js';

/**
 * A stop of the admin API lets a response already ended but still being written (a large page for a
 * client that reads slowly) go out whole before it closes the connection. Regression test: node counts
 * a keep-alive connection idle once its response's `end()` was called, so the stop destroyed it with
 * the rest of the body unsent.
 */
const BODY_BYTES = 16 * 1024 * 1024;

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('admin API stop with a response not written yet', () => {
  it('sends a slow client the whole of a response ended just before the stop', async () => {
    let ended!: () => void;
    const answerEnded = new Promise<void>((resolve) => {
      ended = resolve;
    });
    const app = express();
    app.get('/large', (_req, res) => {
      res.type('application/octet-stream').end(Buffer.alloc(BODY_BYTES, 'x'));
      ended();
    });
    const listening = await listenControlPlane(app, {
      host: '127.0.0.1',
      port: 0,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 120_000,
      maxConnections: 100,
      maxConnectionsPerClient: 10,
    });
    server = listening;
    const address = listening.address();
    if (address === null || typeof address === 'string') throw new Error('no port');

    const socket = connect(address.port, '127.0.0.1');
    let received = 0;
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head === '') head = chunk.toString('latin1', 0, chunk.indexOf('\r\n\r\n') + 4);
      received += chunk.length;
    });
    socket.on('error', () => {});
    let closed = false;
    const closedPromise = new Promise<void>((resolve) =>
      socket.once('close', () => {
        closed = true;
        resolve();
      }),
    );
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.pause();
    socket.write('GET /large HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await answerEnded;

    const cut = closeGracefully(listening, 60_000);
    // Several of the stop's sweeps run while the client reads nothing; then it reads in short spells.
    await pause(500);
    while (!closed) {
      socket.resume();
      await pause(10);
      socket.pause();
      await pause(40);
    }
    await closedPromise;

    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received - Buffer.byteLength(head, 'latin1')).toBe(BODY_BYTES);
    // Closed as an idle connection once written, not cut at the shutdown timeout.
    expect(await cut).toBe(0);
  });
});
