export interface TenantLineBudgetOptions {
  /** Lines one tenant may write per window. */
  linesPerWindow: number;
  windowMs: number;
  /** At the end of a window in which some of the tenant's lines were left out: how many. */
  summarize: (tenantId: string, suppressed: number) => void;
}

interface TenantWindow {
  written: number;
  suppressed: number;
}

/**
 * How many lines of one kind each tenant may write to the replica's service log per window, over all
 * its origins: the log buffer is every tenant's, and a tenant's config (how many origins and targets
 * it has, how short their cool-downs are) is its own to choose. A tenant's window starts with its
 * first line; the lines past its share are left out, and counted in one summary at the window's end.
 * Each tenant's share is its own: another tenant's lines never use it up.
 */
export class TenantLineBudget {
  readonly #options: TenantLineBudgetOptions;
  /** Tenants with a window open: only those that wrote a line within the last window. */
  readonly #windows = new Map<string, TenantWindow>();

  constructor(options: TenantLineBudgetOptions) {
    this.#options = options;
  }

  /** Whether the tenant may write one more line now; if not, it is counted for the window's summary. */
  admit(tenantId: string): boolean {
    let window = this.#windows.get(tenantId);
    if (window === undefined) {
      const opened: TenantWindow = { written: 0, suppressed: 0 };
      this.#windows.set(tenantId, opened);
      setTimeout(() => this.#close(tenantId, opened), this.#options.windowMs).unref();
      window = opened;
    }
    if (window.written < this.#options.linesPerWindow) {
      window.written++;
      return true;
    }
    window.suppressed++;
    return false;
  }

  #close(tenantId: string, window: TenantWindow): void {
    this.#windows.delete(tenantId);
    if (window.suppressed > 0) this.#options.summarize(tenantId, window.suppressed);
  }
}
