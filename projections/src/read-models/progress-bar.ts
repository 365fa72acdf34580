import type { ReplayProgress } from './replay.js';

/**
 * Renders replay progress as `[#####.....]  52%  52,000 events  18,400 events/s  pos 52000/100000`.
 * On a terminal it redraws one line; otherwise (CI logs) it prints a line per 10%.
 */
export function createProgressBar(out: NodeJS.WriteStream = process.stderr, width = 30) {
  let lastDecile = -1;
  return {
    update(progress: ReplayProgress): void {
      const fraction =
        progress.head > 0n ? Math.min(1, Number((progress.position * 1000n) / progress.head) / 1000) : 1;
      const filled = Math.round(fraction * width);
      const line =
        `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%` +
        `  ${progress.events.toLocaleString('en-US')} events` +
        `  ${progress.eventsPerSecond.toLocaleString('en-US')} events/s` +
        `  pos ${progress.position}/${progress.head}`;
      if (out.isTTY) {
        out.write(`\r${line}`);
        return;
      }
      const decile = Math.floor(fraction * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        out.write(`${line}\n`);
      }
    },
    done(): void {
      if (out.isTTY) out.write('\n');
    },
  };
}
