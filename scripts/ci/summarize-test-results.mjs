// Prints "N passed, M failed[, K skipped]" from vitest's JSON reports, the line CI reads. The first
// report must exist (make test's main run); later ones (the cluster run) are added when present.
import { existsSync, readFileSync } from 'node:fs';

const [first = '.data/test-results.json', ...more] = process.argv.slice(2);
if (!existsSync(first)) {
  console.log('0 passed, 1 failed');
  console.error(`no test report at ${first}: the run stopped before the tests`);
  process.exit(0);
}
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of [first, ...more.filter((path) => existsSync(path))]) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const failedSuites = (report.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0,
  ).length;
  passed += report.numPassedTests ?? 0;
  failed += (report.numFailedTests ?? 0) + failedSuites;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
