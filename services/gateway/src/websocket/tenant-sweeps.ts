import { EventLoopSlices, runInSlices, type SlicedWork } from '@vantageedge/shared/process/event-loop-slices';

interface Sweep {
  /** Still waiting for what it needs before its first step (a key set's fetch). */
  preparing: boolean;
}

/**
 * The checks of a tenant's open WebSockets after its snapshots, one sweep per tenant at a time, in
 * slices of the event loop: a tenant with 10,000 open WebSockets changing its settings does not hold
 * up the replica's other tenants while each is checked and closed. A newer snapshot of the tenant
 * stops the sweep under way at its next slice: the new sweep checks every connection against it.
 */
export class TenantSweeps {
  readonly #underway = new Map<string, Sweep>();
  readonly #slices: () => EventLoopSlices;

  /** `slices`: each sweep's (tests: a step clock). */
  constructor(slices: () => EventLoopSlices = () => new EventLoopSlices()) {
    this.#slices = slices;
  }

  /**
   * Runs the tenant's sweep: `prepare` first when given, then the `steps` it builds (a yield between
   * two connections), giving the event loop back whenever a slice has used its budget. Without
   * `prepare` the first slice runs at once. False when a newer sweep (or `stopAll`) stopped it.
   */
  async run(
    tenantId: string,
    prepare: (() => Promise<void>) | undefined,
    steps: () => SlicedWork<void>,
  ): Promise<boolean> {
    const sweep: Sweep = { preparing: prepare !== undefined };
    this.#underway.set(tenantId, sweep);
    const wanted = () => this.#underway.get(tenantId) === sweep;
    try {
      if (prepare !== undefined) {
        await prepare();
        if (!wanted()) return false;
        sweep.preparing = false;
      }
      return (await runInSlices(steps(), this.#slices(), wanted)).done;
    } finally {
      if (wanted()) this.#underway.delete(tenantId);
    }
  }

  /** Whether the tenant's sweep has yet to take its first step: it will see what is added now. */
  preparing(tenantId: string): boolean {
    return this.#underway.get(tenantId)?.preparing === true;
  }

  /** Every sweep stops at its next slice. */
  stopAll(): void {
    this.#underway.clear();
  }
}
