// Completions that a callback's own submissions finish inside io_uring_enter
// (page-cache reads) are delivered in the same wakeup, one callback per
// batch, without another event-loop turn; but a stream of them yields to the
// event loop every 64 batches, so timers and I/O are never starved. Both the
// raw and the Promise API. On the waiter-thread path Node runs as many
// hand-overs in one loop turn as its thread-safe-function queue dispatches,
// and turns idly while the thread wakes, so there the loop-turn bounds do not
// apply: those runs check the data only.
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { countTurns, rawDepth1Reads } from './helpers/depth1-loop';
import { tempDir } from './helpers/tmp';

const N = 4096;
const t = tempDir();
afterAll(() => t.cleanup());
const file = path.join(t.dir, 'cached.img');
fs.writeFileSync(file, Buffer.alloc(1 << 20, 0x77)); // written, so in the page cache

function checkTurns(turns: number, completions: string): void {
  if (completions !== 'uv-poll') return; // Node may run many hand-overs per turn there
  expect(turns).toBeGreaterThanOrEqual(Math.floor(N / 64) - 1); // never starved
  expect(turns).toBeLessThan(N / 8); // no loop turn per request
}

for (const completions of ['uv-poll', 'thread'] as const) {
  describe(`completions: ${completions}`, () => {
    it('raw depth-1 page-cache reads: far fewer loop turns than requests, at least one per 64 batches', async () => {
      const ring = new Ring({ engine: 'io_uring', depth: 1, completions });
      try {
        const dev = await ring.open(file);
        const buf = Buffer.alloc(4096);
        ring.raw.registerBuffers([buf], { fixed: false });
        const { bad, turns } = await rawDepth1Reads(ring, dev, N);
        expect(bad).toBe(0);
        expect(buf[0]).toBe(0x77);
        checkTurns(turns, completions);
      } finally {
        await ring.close();
      }
    });

    it('Promise API depth-1 loop: the same, with continuations running between batches', async () => {
      const ring = new Ring({ engine: 'io_uring', depth: 1, completions });
      try {
        const dev = await ring.open(file);
        const buf = Buffer.alloc(4096);
        const turns = await countTurns(async () => {
          for (let i = 0; i < N; i++) expect(await dev.read(buf, (i % 256) * 4096)).toBe(4096);
        });
        checkTurns(turns, completions);
      } finally {
        await ring.close();
      }
    });
  });
}
