import { type BlockDevice, OP, type Ring } from '../../dist/lib/index.js';

/**
 * n 4 KiB reads at depth 1 through ring.raw into registered buffer 0, each
 * submitted from the previous one's completion callback (offsets cycle over
 * the first MiB). Resolves with the number of results that were not 4096
 * and the number of event-loop turns (a setImmediate chain) in which a
 * completion callback ran. Turns in which no completion was ready (the loop
 * idling while a read is on the disk) are not counted: they depend on the
 * device's latency, not on how completions are delivered.
 */
export function rawDepth1Reads(ring: Ring, dev: BlockDevice, n: number): Promise<{ bad: number; turns: number }> {
  let left = n;
  let bad = 0;
  const loop = turnCounter();
  let lastTurn = -1;
  let turns = 0;
  return new Promise((resolve) => {
    const issue = (): void => {
      ring.raw.prepare(0, left, OP.read, dev, 0, 0, 4096, ((left * 7) % 256) * 4096);
      ring.raw.submit(1);
    };
    ring.raw.onComplete = (cq, count) => {
      if (loop.turns !== lastTurn) {
        lastTurn = loop.turns;
        turns++;
      }
      for (let i = 0; i < count; i++) if (cq[i * 4 + 1] !== 4096) bad++;
      left -= count;
      if (left > 0) {
        issue();
      } else {
        loop.stop();
        resolve({ bad, turns });
      }
    };
    issue();
  });
}

/** Counts event-loop turns with a setImmediate chain until stop(). */
function turnCounter(): { readonly turns: number; stop: () => void } {
  let done = false;
  const c = {
    turns: 0,
    stop: (): void => {
      done = true;
    },
  };
  const tick = (): void => {
    c.turns++;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  return c;
}

/** Event-loop turns while run() is in progress. */
export async function countTurns(run: () => Promise<void>): Promise<number> {
  const loop = turnCounter();
  await run();
  loop.stop();
  return loop.turns;
}
