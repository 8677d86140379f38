import { type BlockDevice, OP, type Ring } from '../../dist/lib/index.js';

/**
 * n 4 KiB reads at depth 1 through ring.raw into registered buffer 0, each
 * submitted from the previous one's completion callback (offsets cycle over
 * the first MiB). Resolves with the number of results that were not 4096.
 */
export function rawDepth1Reads(ring: Ring, dev: BlockDevice, n: number): Promise<number> {
  let left = n;
  let bad = 0;
  return new Promise<number>((resolve) => {
    const issue = (): void => {
      ring.raw.prepare(0, left, OP.read, dev, 0, 0, 4096, ((left * 7) % 256) * 4096);
      ring.raw.submit(1);
    };
    ring.raw.onComplete = (cq, count) => {
      for (let i = 0; i < count; i++) if (cq[i * 4 + 1] !== 4096) bad++;
      left -= count;
      if (left > 0) issue();
      else resolve(bad);
    };
    issue();
  });
}

/** Event-loop turns (a setImmediate chain) while run() is in progress. */
export async function countTurns(run: () => Promise<void>): Promise<number> {
  let turns = 0;
  let done = false;
  const tick = (): void => {
    turns++;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  await run();
  done = true;
  return turns;
}
