// Guards: ring and eventfd fds leaking into spawned children (they are
// O_CLOEXEC).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { createImage, Ring } from '../dist/lib/index.js';
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

// Every fd blockring opens, on every engine and object that holds one (rings,
// eventfds, devices, a qcow2 overlay and its raw base, a mapped COW region's
// own overlay fd, a raw mapped region), carries O_CLOEXEC in /proc/self/fdinfo.
it('every fd blockring opens is O_CLOEXEC in /proc/self/fdinfo: engines, devices, qcow2 overlay and base, mapped regions', async () => {
  const O_CLOEXEC = 0o2000000;
  const fds = (): Set<number> => new Set(fs.readdirSync('/proc/self/fd').map(Number));
  const before = fds();
  const base = path.join(t.dir, 'cloexec-base.raw');
  const overlay = path.join(t.dir, 'cloexec-overlay.qcow2');
  fs.writeFileSync(base, Buffer.alloc(1 << 20, 7));
  await createImage(overlay, { format: 'qcow2', backing: base, backingFormat: 'raw' });
  const closers: (() => Promise<void>)[] = [];
  for (const engine of ['io_uring', 'libaio', 'threads', 'mmap'] as const) {
    const ring = new Ring({ engine, depth: 8 });
    const dev = await ring.open(path.join(t.dir, `cloexec-${engine}.img`), { create: true, size: 1 << 20 });
    const region = await dev.map();
    closers.push(async () => { region.unmap(); await dev.close(); await ring.close(); });
  }
  const ring = new Ring({ depth: 8 });
  const img = await ring.open(overlay, { format: 'qcow2' });
  const cow = await img.map();
  cow.buffer[0] = 1; // the first write copies a cluster up through the region's own overlay fd
  closers.push(async () => { cow.unmap(); await img.close(); await ring.close(); });

  const opened = [...fds()].filter((fd) => !before.has(fd));
  expect(opened.length).toBeGreaterThanOrEqual(6);
  const leaky: string[] = [];
  for (const fd of opened) {
    let info: string;
    let target: string;
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (readdir's own fd)
    }
    const flags = parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1]!, 8);
    if (!(flags & O_CLOEXEC)) leaky.push(`${fd} -> ${target} (flags 0${flags.toString(8)})`);
  }
  expect(leaky).toEqual([]);
  for (const c of closers) await c();
});
