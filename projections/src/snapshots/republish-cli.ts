// `make republish-snapshots`: rebuilds the compacted snapshot topic from snapshot_state (after the
// topic was lost) by queueing every tenant for the running snapshot projector, then waits until all
// are published. Exit 1 if they are not published within REPUBLISH_TIMEOUT_SECONDS.
import 'dotenv/config';
import { LOCAL_DEFAULTS, postgresUrl } from '@vantageedge/shared/settings/common-settings';
import { loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import pg from 'pg';
import { z } from 'zod';
import { requestSnapshotRepublish, waitForSnapshotsPublished } from './republish.js';

const config = loadSettingsOrExit('republish-snapshots', {
  DATABASE_URL: postgresUrl.default(LOCAL_DEFAULTS.DATABASE_URL),
  REPUBLISH_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(3600).default(120),
});
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 });

try {
  const { tenants } = await requestSnapshotRepublish(pool);
  process.stdout.write(
    `republish-snapshots: ${tenants} tenant snapshots queued for the snapshot projector\n`,
  );
  let last = -1;
  const published = await waitForSnapshotsPublished(pool, {
    timeoutMs: config.REPUBLISH_TIMEOUT_SECONDS * 1000,
    onProgress: (pending) => {
      if (pending !== last) process.stdout.write(`republish-snapshots: ${pending} left to publish\n`);
      last = pending;
    },
  });
  if (published) {
    process.stdout.write('republish-snapshots: every snapshot is on the topic again\n');
  } else {
    process.stderr.write(
      `republish-snapshots: ${last} snapshots still unpublished after ${config.REPUBLISH_TIMEOUT_SECONDS} s; ` +
        'is the snapshot projector running and Kafka reachable? They will be published when it is.\n',
    );
    process.exitCode = 1;
  }
} catch (error) {
  process.stderr.write(
    `republish-snapshots failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
} finally {
  await pool.end();
}
