// Writes parked by the engine in one wakeup are allocated together
// (Qcow2Device #allocateParked): fresh clusters of an image with no
// backing, many at once, several requests into one new cluster, requests
// spanning clusters and L2 tables, runs crossing refcount blocks that are
// not cached yet (small clusters, small cache). Checked against a shadow
// copy, then by qemu-img check and compare.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { createImage, Ring } from '../dist/lib/index.js';
import { expectCheckClean, expectSameAsRaw } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it.each([512, 4096, 65536])('allocates many parked writes at once (cluster size %i), consistent on disk', async (cs) => {
  const rand = rng(0x14a + cs);
  const size = cs * 4096; // 512 B clusters: 64 L2 tables, 16 refcount blocks
  const image = path.join(t.dir, `fresh-${cs}.qcow2`);
  const shadowPath = path.join(t.dir, `shadow-${cs}.raw`);
  await createImage(image, { format: 'qcow2', size, clusterSize: cs });
  const shadow = Buffer.alloc(size);
  const ring = new Ring({ depth: 64 });
  const dev = await ring.open(image, { format: 'qcow2', cacheSize: 4 * cs }); // the smallest cache: evictions
  let stamp = 1;
  const write = async (off: number, len: number): Promise<void> => {
    const b = Buffer.alloc(len, stamp++ & 0xff);
    if (len >= 4) b.writeUInt32LE(stamp, 0);
    expect(await dev.write(b, off)).toBe(len);
    b.copy(shadow, off);
  };
  for (let round = 0; round < 6; round++) {
    const jobs: Promise<void>[] = [];
    // Overlapping requests in flight together may land in either order: each cluster serves one job per round.
    const taken = new Set<number>();
    const reserve = (off: number, len: number): boolean => {
      const first = Math.floor(off / cs);
      const last = Math.floor((off + len - 1) / cs);
      for (let c = first; c <= last; c++) if (taken.has(c)) return false;
      for (let c = first; c <= last; c++) taken.add(c);
      return true;
    };
    for (let k = 0; k < 48; k++) {
      const r = rand();
      const vc = Math.floor(rand() * (size / cs));
      if (r < 0.5) {
        const len = Math.min(cs, 512 * (1 + Math.floor(rand() * 8)));
        if (reserve(vc * cs, len)) jobs.push(write(vc * cs, len)); // one cluster, from its start
      } else if (r < 0.8) {
        // Four requests into one (probably new) cluster, disjoint.
        const q = cs / 4;
        if (reserve(vc * cs, cs)) {
          for (let i = 0; i < 4; i++) jobs.push(write(vc * cs + i * q, 1 + Math.floor(rand() * q)));
        }
      } else {
        const off = Math.min(size - 4 * cs, vc * cs + Math.floor(rand() * cs));
        const len = 1 + Math.floor(rand() * 3 * cs);
        if (reserve(off, len)) jobs.push(write(off, len)); // across clusters (and L2 tables)
      }
    }
    await Promise.all(jobs);
    if (round % 2) await dev.flush();
  }
  const all = Buffer.alloc(size);
  expect(await dev.read(all, 0)).toBe(size);
  await ring.close();
  fs.writeFileSync(shadowPath, shadow);
  expect(all.equals(shadow)).toBe(true);
  expectCheckClean(image);
  expectSameAsRaw(image, shadowPath);
}, 120_000);
