import type { Http2Session } from 'node:http2';

/**
 * The open HTTP/2 sessions of a listener, for a graceful stop: GOAWAY lets the streams in flight
 * finish and refuses new ones; what is still open at the deadline is destroyed.
 */
export class Http2Sessions {
  readonly #open = new Set<Http2Session>();
  #closing = false;

  constructor(private readonly idleTimeoutMs: number) {}

  track(session: Http2Session): void {
    if (this.#closing) {
      session.close();
      return;
    }
    this.#open.add(session);
    session.once('close', () => this.#open.delete(session));
    // An idle session (no stream for the timeout) is closed with GOAWAY like any other.
    if (this.idleTimeoutMs > 0) session.setTimeout(this.idleTimeoutMs, () => session.close());
  }

  get size(): number {
    return this.#open.size;
  }

  /** Sends GOAWAY on every session (and on any that opens from now on). */
  closeGracefully(): void {
    this.#closing = true;
    for (const session of this.#open) session.close();
  }

  /** Resolves once no session is left, or with how many were destroyed at the deadline. */
  async closed(timeoutMs: number): Promise<number> {
    this.closeGracefully();
    const deadline = Date.now() + timeoutMs;
    while (this.#open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cut = this.#open.size;
    for (const session of this.#open) session.destroy();
    return cut;
  }
}
