/**
 * How the paired comparison's runs are shared between pairs of gateway processes: the runs of each pair
 * started, in order, each a whole number of couples (a run one way round and the next the other way).
 * An odd count of runs is rounded up to a couple; with fewer couples than `pairProcesses`, each pair
 * gets one couple and no pair is started without a run, so the list's length is the pairs that ran.
 */
export function pairedBlocks(pairCount: number, pairProcesses: number): number[] {
  const couples = Math.ceil(pairCount / 2);
  const pairs = Math.min(pairProcesses, couples);
  const blocks: number[] = [];
  let planned = 0;
  for (let block = 0; block < pairs; block++) {
    const runs = 2 * Math.floor((couples * (block + 1)) / pairs) - planned;
    blocks.push(runs);
    planned += runs;
  }
  return blocks;
}
