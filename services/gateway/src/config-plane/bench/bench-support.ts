import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { writeBenchResult } from '@vantageedge/shared/testing/bench-results';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';

/** Snapshot messages the config-plane benches send: up to the gateways' 8 MiB topic limit. */
export const BENCH_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** The snapshot buses a config-plane bench opens on the local Kafka (6 partitions), closed together at its end. */
export class BenchBuses {
  readonly #buses: SnapshotBus[] = [];

  open(topic: string): SnapshotBus {
    const bus = createKafkaSnapshotBus({
      brokers: TEST_INFRA.kafkaBrokers,
      clientId: `ve-bench-${uniqueSuffix()}`,
      topic,
      partitions: 6,
      replicationFactor: 1,
      maxMessageBytes: BENCH_MAX_MESSAGE_BYTES,
      groupIdPrefix: 've-bench',
    });
    this.#buses.push(bus);
    return bus;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#buses.map((bus) => bus.close()));
  }
}

/**
 * Runs a bench's `main`: its result is written to bench-results/<kind>-<time>.json and printed, and
 * the process exits 0; an error is printed and the process exits 1.
 */
export function runBench(kind: string, main: (startedAt: string) => Promise<unknown>): void {
  const startedAt = new Date().toISOString();
  main(startedAt)
    .then(async (result) => {
      const file = await writeBenchResult(kind, startedAt, result);
      console.log(JSON.stringify(result, null, 2));
      console.error(`written to ${file}`);
      process.exit(0);
    })
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
}
