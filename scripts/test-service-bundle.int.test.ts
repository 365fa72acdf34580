import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_BUNDLE_DIR_VARIABLE, serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';
import { describe, expect, it } from 'vitest';
import { ENTRY_POINTS } from '../e2e/harness.js';
import { BUILD_ENTRY_POINTS } from './build-entry-points.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// A lost bundle would not fail any test (the services start through tsx all the same), only slow the
// run down: this file is what notices.
describe('the integration run starts its service processes from bundles', () => {
  const bundleDir = process.env[SERVICE_BUNDLE_DIR_VARIABLE] ?? '';

  it('every service entry point the tests start runs from this run’s bundle, source-mapped', () => {
    expect(bundleDir, `${SERVICE_BUNDLE_DIR_VARIABLE} set by the global setup`).not.toBe('');
    for (const entry of [...Object.values(ENTRY_POINTS), ...Object.values(BUILD_ENTRY_POINTS)]) {
      const [sourceMaps, file, ...rest] = serviceNodeArgs(entry);
      expect({ entry, sourceMaps, inBundle: file?.startsWith(`${bundleDir}/`), rest }).toEqual({
        entry,
        sourceMaps: '--enable-source-maps',
        inBundle: true,
        rest: [],
      });
      expect(existsSync(file as string), file).toBe(true);
    }
  });

  it('an entry point given by its absolute path finds the same bundle', () => {
    expect(serviceNodeArgs(path.join(ROOT, 'migrations/src/cli.ts'))).toEqual(
      serviceNodeArgs('migrations/src/cli.ts'),
    );
  });

  it('the compiled migrator has its SQL files beside it, as in dist/', () => {
    const [, migrator = ''] = serviceNodeArgs('migrations/src/cli.ts');
    expect(existsSync(path.join(path.dirname(migrator), 'sql/0001_event_store.up.sql')), migrator).toBe(true);
  });

  // The tests run the CLI from the bundle: this is what still runs the bin a checkout's `npx vantageedge` runs.
  it('the CLI’s bin runs its TypeScript sources through tsx', () => {
    const bin = path.join(ROOT, 'tools/cli/bin/vantageedge.js');
    const help = spawnSync(process.execPath, [bin, '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: vantageedge');
    const notLoggedIn = spawnSync(process.execPath, [bin, 'get', 'tenants'], {
      cwd: ROOT,
      env: { ...process.env, VANTAGEEDGE_CONFIG: path.join(ROOT, '.data', 'no-such-cli-config.json') },
      encoding: 'utf8',
    });
    expect(notLoggedIn.status, notLoggedIn.stderr).toBe(3);
  });

  it('a compiled .js file and a .ts file outside the bundle run as before', () => {
    expect(serviceNodeArgs('dist/services/gateway/main.js')).toEqual(['dist/services/gateway/main.js']);
    const [flag, , entry] = serviceNodeArgs('services/dev/src/main.ts');
    expect([flag, entry]).toEqual(['--import', 'services/dev/src/main.ts']);
  });
});
