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
