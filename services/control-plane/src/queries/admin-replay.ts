import {
  ReplayInProgressError,
  type ReplayProgress,
  replayReadModels,
} from '@vantageedge/projections/read-models/replay';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';

/** The state of the replay this process started last (the admin endpoint's view). */
export interface ReplayStatus {
  status: 'idle' | 'running' | 'succeeded' | 'failed';
  started_at: string | null;
  finished_at: string | null;
  events: number;
  position: string;
  head_position: string;
  events_per_second: number;
  error: string | null;
}

export type StartResult = { started: true; status: ReplayStatus } | { started: false; reason: 'in_progress' };

/**
 * Runs replays in the background of the control-plane process: POST starts one and answers as soon
 * as it holds the replay lock (or learns another replay holds it); GET reports progress.
 */
export class ReplayRunner {
  private state: ReplayStatus = {
    status: 'idle',
    started_at: null,
    finished_at: null,
    events: 0,
    position: '0',
    head_position: '0',
    events_per_second: 0,
    error: null,
  };
  private running: Promise<void> | null = null;

  constructor(
    private readonly store: EventStore,
    private readonly pool: pg.Pool,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  status(): ReplayStatus {
    return { ...this.state };
  }

  async start(): Promise<StartResult> {
    if (this.running) return { started: false, reason: 'in_progress' };
    const previous = this.state;
    this.state = {
      ...previous,
      status: 'running',
      started_at: new Date().toISOString(),
      finished_at: null,
      error: null,
    };
    let refused = false;
    let signalStarted: (started: boolean) => void = () => {};
    const startedOrRefused = new Promise<boolean>((resolve) => {
      signalStarted = resolve;
    });
    const record = (progress: ReplayProgress) => {
      this.state.events = progress.events;
      this.state.position = progress.position.toString();
      this.state.head_position = progress.head.toString();
      this.state.events_per_second = progress.eventsPerSecond;
      signalStarted(true);
    };
    this.running = replayReadModels({ store: this.store, pool: this.pool, onProgress: record })
      .then(
        (result) => {
          this.state.status = 'succeeded';
          this.state.events = result.events;
          this.state.position = result.position.toString();
          this.state.events_per_second = result.eventsPerSecond;
        },
        (error: unknown) => {
          if (error instanceof ReplayInProgressError) {
            refused = true;
            this.state = previous;
            signalStarted(false);
            return;
          }
          this.onError(error);
          this.state.status = 'failed';
          this.state.error = error instanceof Error ? error.message : String(error);
          signalStarted(true);
        },
      )
      .finally(() => {
        if (!refused) this.state.finished_at = new Date().toISOString();
        this.running = null;
      });
    return (await startedOrRefused)
      ? { started: true, status: this.status() }
      : { started: false, reason: 'in_progress' };
  }

  /** For tests and shutdown: waits for the replay in flight, if any. */
  async settled(): Promise<void> {
    await this.running;
  }
}
