import net from 'node:net';

/** A raw TCP origin on 127.0.0.1 (a free port): the test reads and writes its connections' bytes. */
export interface RawOrigin {
  /** `http://127.0.0.1:<port>`, a target for an origin. */
  readonly url: string;
  /** Ends its open connections and stops listening. */
  close(): Promise<void>;
}

/** A raw origin whose every connection `onConnection` serves. */
export async function startRawOrigin(onConnection: (socket: net.Socket) => void): Promise<RawOrigin> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
