import pg from 'pg';
import { ChangeSignal } from '../subscription.js';

export interface NotificationListenerOptions {
  /** Connection settings for the dedicated LISTEN connection (the pool's own options). */
  connection: pg.ClientConfig;
  /** The connection's class (the pool's own: clientClassOf); default pg.Client. */
  client?: typeof pg.Client;
  channel: string;
  retry?: { initialMs: number; maxMs: number };
  onError?: (error: unknown) => void;
}

/**
 * One dedicated connection that LISTENs on a channel and turns notifications into ChangeSignal
 * wake-ups. It is not a pooled connection because LISTEN is per session. When the connection
 * drops it reconnects with backoff, and after every (re)connect it wakes all waiters once:
 * notifications sent while it was away are lost, so readers must look for themselves.
 */
export class NotificationListener {
  readonly changes = new ChangeSignal();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: NotificationListenerOptions) {}

  /** Starts listening (idempotent). Resolves after the first attempt, successful or not. */
  start(): Promise<void> {
    this.stopped = false;
    if (this.client || this.connecting) return this.connecting ?? Promise.resolve();
    this.connecting = this.connectWhileWanted().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * Connects again when the connection just made was dropped for a stop that a start then undid
   * (that start found this attempt under way and relied on it).
   */
  private async connectWhileWanted(): Promise<void> {
    do {
      await this.connect();
    } while (!this.stopped && !this.client && !this.retryTimer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.connecting;
    // Started again meanwhile (the last subscription closed and a new one opened at once, as a
    // projector does when it resubscribes): the connection is the new subscription's now. Ending it
    // would leave the listener deaf, and every subscription waiting for a wake-up that never comes.
    if (!this.stopped) return;
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const Client = this.options.client ?? pg.Client;
    const client = new Client(this.options.connection);
    client.on('notification', () => this.changes.notify());
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('LISTEN connection ended')));
    try {
      await client.connect();
      // The channel name is a constant of this module, never user input; LISTEN takes no parameters.
      await client.query(`listen ${this.options.channel}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.options.onError?.(error);
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.failures = 0;
    this.changes.notify();
  }

  private lost(client: pg.Client, error: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.options.onError?.(error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    const { initialMs, maxMs } = this.options.retry ?? { initialMs: 50, maxMs: 2_000 };
    const delay = Math.min(initialMs * 2 ** this.failures, maxMs);
    this.failures += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.start();
    }, delay);
  }
}
