// Guards: ring and eventfd fds leaking into spawned children (they are
// O_CLOEXEC).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { fileTempDir, ringFds } from './helpers/lifetime';

const t = fileTempDir();

it('ring and eventfd fds are close-on-exec: a spawned child inherits none', async () => {
  const ring = new Ring({ depth: 8 });
  const dev = await ring.open(path.join(t.dir, 'cloexec.img'), { create: true, size: 4096 });
  expect(ringFds()).toBeGreaterThanOrEqual(2);
  // A shell, not node: node opens eventfds of its own.
  const child = spawnSync('/bin/sh', ['-c', 'for f in /proc/$$/fd/*; do readlink "$f"; done'], { encoding: 'utf8' });
  const targets = child.stdout.split('\n').filter(Boolean);
  expect(targets.length).toBeGreaterThan(0);
  expect(targets.filter((l) => /io_uring|eventfd|cloexec\.img/.test(l))).toEqual([]);
  await dev.close();
  await ring.close();
});
