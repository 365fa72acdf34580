// The migrator: `tsx migrations/src/cli.ts up|down [steps]`.
import '@vantageedge/shared/settings/env-file';
import { warnOfUnverifiedDatabase } from '@vantageedge/shared/postgres/database-url-security';
import { LOCAL_DEFAULTS, postgresUrl } from '@vantageedge/shared/settings/common-settings';
import { loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import { z } from 'zod';
import { migrateDown, migrateUp } from './runner.js';

const config = loadSettingsOrExit('migrator', {
  DATABASE_URL: postgresUrl.default(LOCAL_DEFAULTS.DATABASE_URL),
});
const [command = 'up', stepsText] = process.argv.slice(2);
warnOfUnverifiedDatabase('migrator', config.DATABASE_URL);

const stepsSchema = z.coerce.number().int().min(1);

try {
  if (command === 'up') {
    const { applied } = await migrateUp(config.DATABASE_URL);
    console.log(
      applied.length
        ? applied.map((m) => `applied ${m.version}_${m.name}`).join('\n')
        : 'migrations: up to date',
    );
  } else if (command === 'down') {
    const steps = stepsSchema.parse(stepsText ?? 1);
    const { applied } = await migrateDown(config.DATABASE_URL, { steps });
    console.log(
      applied.map((m) => `rolled back ${m.version}_${m.name}`).join('\n') ||
        'migrations: nothing to roll back',
    );
  } else {
    console.error(`usage: migrate up | down [steps]`);
    process.exit(2);
  }
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`migrator: ${message}`);
  process.exit(1);
}
