// Guards: worker threads terminated mid-I/O crashing or leaking their rings'
// fds, on both completion paths.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';

import { fdTargets, fileTempDir, fixtures, ringFds } from './helpers/lifetime';

const t = fileTempDir();

it.each(['uv-poll', 'thread'])('4 worker threads with their own rings, terminated mid-I/O, leave no fds behind (completions: %s)', async (completions) => {
  const before = fdTargets().length;
  const beforeRing = ringFds();
  const env = { ...process.env, BLOCKRING_COMPLETIONS: completions };
  const workers = Array.from({ length: 4 }, (_, i) =>
    new Worker(path.join(fixtures, 'worker-io.js'), { env, workerData: { file: path.join(t.dir, `${completions}-w${i}.img`) } }));
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  })));
  expect(ringFds()).toBeGreaterThanOrEqual(beforeRing + 8);
  const codes = await Promise.all(workers.map((w) => w.terminate()));
  expect(codes).toEqual([1, 1, 1, 1]);
  // Worker teardown closes its files asynchronously in libuv; give it a moment.
  for (let i = 0; i < 50 && fdTargets().length > before; i++) await new Promise((r) => setTimeout(r, 20));
  expect(ringFds()).toBe(beforeRing);
  expect(fdTargets().length).toBeLessThanOrEqual(before);
});
