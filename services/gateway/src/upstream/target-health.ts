import type { OriginConfig } from '@vantageedge/shared/domain/gateway-config';

export type HealthSettings = OriginConfig['health_check'];
export type HealthSource = 'active' | 'passive';
export type HealthListener = (healthy: boolean, source: HealthSource) => void;

/**
 * A target's health from two sources. Active probes move it down after `unhealthy_threshold`
 * consecutive failed probes and up after `healthy_threshold` consecutive good ones. Passive checks
 * (real traffic) eject it after `passive.unhealthy_threshold` consecutive failures.
 *
 * An ejected target receives no traffic, so passive checks alone could never bring it back. With
 * active checks enabled, the probes restore it; without them it is re-admitted after
 * `passiveEjectionMs` (like Envoy's outlier ejection time) and is ejected again if it still fails.
 * Targets start healthy so a new origin serves at once.
 */
export class TargetHealth {
  #healthy = true;
  #probeSuccesses = 0;
  #probeFailures = 0;
  #trafficFailures = 0;
  #ejectedUntil = 0;
  /** Probes or traffic of this set have moved the target up or down. */
  #judged = false;

  constructor(
    private readonly settings: HealthSettings,
    private readonly passiveEjectionMs: number,
    private readonly now: () => number,
    private readonly onChange: HealthListener = () => {},
  ) {}

  get healthy(): boolean {
    if (!this.#healthy && !this.settings.active.enabled && this.now() >= this.#ejectedUntil) {
      this.#set(true, 'passive');
    }
    return this.#healthy;
  }

  /**
   * The set this target's set replaces (its origin was edited) had the same target down: it stays down
   * until it recovers as it would have there (the probes, or the end of the passive ejection), rather than
   * taking traffic again and failing requests until it is ejected anew. Unless this set has already moved
   * it itself. True when the target was taken down.
   */
  inheritEjection(previous: TargetHealth): boolean {
    if (this.#judged || !this.#healthy || previous.healthy) return false;
    this.#healthy = false;
    this.#ejectedUntil = previous.#ejectedUntil;
    this.#trafficFailures = 0;
    return true;
  }

  recordProbe(success: boolean): void {
    const { healthy_threshold, unhealthy_threshold } = this.settings.active;
    if (success) {
      this.#probeFailures = 0;
      this.#probeSuccesses++;
      if (!this.#healthy && this.#probeSuccesses >= healthy_threshold) this.#set(true, 'active');
    } else {
      this.#probeSuccesses = 0;
      this.#probeFailures++;
      if (this.#healthy && this.#probeFailures >= unhealthy_threshold) this.#set(false, 'active');
    }
  }

  recordTraffic(success: boolean): void {
    if (!this.settings.passive.enabled) return;
    if (success) {
      this.#trafficFailures = 0;
      return;
    }
    this.#trafficFailures++;
    if (this.#healthy && this.#trafficFailures >= this.settings.passive.unhealthy_threshold) {
      this.#ejectedUntil = this.now() + this.passiveEjectionMs;
      // Ejected by traffic: the probes must now see healthy_threshold good answers in a row.
      this.#probeSuccesses = 0;
      this.#set(false, 'passive');
    }
  }

  #set(healthy: boolean, source: HealthSource): void {
    this.#judged = true;
    this.#healthy = healthy;
    this.#trafficFailures = 0;
    this.onChange(healthy, source);
  }
}
