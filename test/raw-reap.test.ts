// ring.raw.reap(): completions the kernel already posted are delivered
// inside the call (onComplete runs in it, once per batch), not on the next
// wakeup; inside a completion callback it does nothing.
import { expect, it } from 'vitest';

import { OP, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let ring: Ring;
let dev: BlockDevice;
withDevice({ open: { size: 64 * 4096 } }, (f) => {
  ({ ring, dev } = f);
});

const N = 32;

async function cachedReads(): Promise<Buffer[]> {
  // Written through the page cache: the reads below are cache hits.
  const data = Buffer.alloc(N * 4096);
  for (let i = 0; i < N; i++) data.fill(i + 1, i * 4096, (i + 1) * 4096);
  await dev.write(data, 0);
  // Out of the write's completion callback (its Promise reactions run inside it, where reap() does nothing).
  await new Promise((r) => setImmediate(r));
  const bufs = Array.from({ length: N }, () => Buffer.alloc(4096));
  ring.raw.registerBuffers(bufs, { fixed: false });
  for (let i = 0; i < N; i++) ring.raw.prepare(i, i, OP.read, dev, i, 0, 4096, i * 4096);
  return bufs;
}

it('delivers inside reap() what the submit completed, and the rest on later wakeups', async () => {
  const bufs = await cachedReads();
  let inReap = false;
  let duringReap = 0;
  const seen = new Set<number>();
  const all = new Promise<void>((resolve) => {
    ring.raw.onComplete = (cq, count) => {
      if (inReap) duringReap += count;
      for (let k = 0; k < count; k++) {
        expect(cq[k * 4 + 1]).toBe(4096);
        seen.add(cq[k * 4]!);
      }
      if (seen.size === N) resolve();
    };
  });
  ring.raw.submit(N);
  inReap = true;
  const n = ring.raw.reap();
  inReap = false;
  expect(n).toBe(duringReap);
  // io_uring completes page-cache reads inside io_uring_enter; the thread
  // engines may not have finished any yet.
  if (ring.engine === 'io_uring') expect(n).toBeGreaterThan(0);
  await all;
  bufs.forEach((b, i) => expect(b.every((x) => x === i + 1)).toBe(true));
  expect(ring.raw.reap()).toBe(0); // nothing left
  ring.raw.onComplete = null;
});

it('does nothing inside a completion callback', async () => {
  await cachedReads();
  const inner: number[] = [];
  let seen = 0;
  const all = new Promise<void>((resolve) => {
    ring.raw.onComplete = (_cq, count) => {
      inner.push(ring.raw.reap());
      seen += count;
      if (seen === N) resolve();
    };
  });
  ring.raw.submit(N);
  await all;
  expect(inner.every((x) => x === 0)).toBe(true);
  ring.raw.onComplete = null;
});

it('returns 0 on a closed ring', async () => {
  await ring.close();
  expect(ring.raw.reap()).toBe(0);
});
