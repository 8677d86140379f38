// Guards: a ring JS no longer references leaking its io_uring and eventfd
// fds instead of being collected.
import path from 'node:path';
import { expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { fileTempDir, ringFds } from './helpers/lifetime';

const t = fileTempDir();
declare const gc: () => void;

it('an unreferenced ring is collected and its fds closed', async () => {
  const before = ringFds();
  await (async () => {
    const ring = new Ring({ depth: 8 });
    const dev = await ring.open(path.join(t.dir, 'gc2.img'), { create: true, size: 4096 });
    await dev.read(Buffer.alloc(4096), 0);
  })();
  expect(ringFds()).toBe(before + 2);
  for (let i = 0; i < 10 && ringFds() > before; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(ringFds()).toBe(before);
});

// The handle's per-request entry points are functions bound to the native
// ring (no unwrap per call). One kept alone keeps its handle, and so the
// native ring, alive: calling it after everything else is dropped and
// collected submits on a live ring, never on freed memory; once it goes too,
// the ring is collected.
it('a bound submit/submitRaw kept alone keeps its ring alive; dropping it lets the ring go', async () => {
  const { native } = require('../dist/lib/native.js') as typeof import('../dist/lib/native.js');
  const before = ringFds();
  let submitRaw: ((n: number) => number) | null = (() => {
    const h = new native.RingHandle({
      engine: 'io_uring', depth: 8, threads: 1, directSubmitBatch: 2, trace: false, completions: 'uv-poll',
      pollMicros: 0, uringFeatures: undefined, cq: new Float64Array(4096 * 5), rawSq: new Float64Array(4096 * 8),
      rawCq: new Float64Array(4096 * 4), onComplete: () => {},
    });
    expect(Object.getPrototypeOf(h).submitRaw).not.toBe(h.submitRaw); // own, bound property
    return h.submitRaw;
  })();
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(ringFds()).toBe(before + 2);
  expect(submitRaw.call({}, 0)).toBe(0); // any receiver: the function knows its ring
  submitRaw = null;
  for (let i = 0; i < 10 && ringFds() > before; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(ringFds()).toBe(before);
});
