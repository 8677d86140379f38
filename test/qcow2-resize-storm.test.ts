// resize() that grows L1 while parked requests allocate: ring.raw records on
// dev.handle are not ordered by the format layer's gate (README "qcow2"), so
// their allocations (new L2 tables: new L1 entries) race the copy and swap
// of L1 unless resize holds them. Chains of raw writes into fresh L2 tables
// keep parking while resize() grows L1 again and again at random moments;
// Promise writes go along. qemu-img check and compare against a shadow judge it.
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, expect, it } from 'vitest';

import { OP, Ring, TAG } from '../dist/lib/index.js';
import { expectCheckClean, expectSameAsRaw, qemuImg } from './helpers/qemu';
import { rng } from './helpers/rng.mjs';
import { tempDir } from './helpers/tmp';

const t = tempDir();
afterAll(() => t.cleanup());

const CLUSTER = 4096;
const TABLE_SPAN = (CLUSTER / 8) * CLUSTER; // guest bytes one L2 table maps: 2 MiB
const GIB = 1 << 30;
const RESIZES = 8;
const CHAINS = 16;

it('raw-record allocations racing resize() (L1 grown each time) lose no L1 entry and no data', async () => {
  const img = path.join(t.dir, 'storm.qcow2');
  const shadowPath = path.join(t.dir, 'storm.raw');
  expect(qemuImg('create', '-q', '-f', 'qcow2', '-o', `cluster_size=${CLUSTER}`, img, String(GIB)).status).toBe(0);
  const shadow = fs.openSync(shadowPath, 'w+');
  fs.ftruncateSync(shadow, GIB);
  const random = rng(20261203);
  const rand = (n: number): number => Math.floor(random() * n);
  const ring = new Ring({ depth: 64 });
  const dev = await ring.open(img, { format: 'qcow2' });
  const bufs = Array.from({ length: CHAINS }, () => Buffer.alloc(CLUSTER));
  ring.raw.registerBuffers(bufs);
  const used = new Set<number>();
  const written = new Map<number, number>(); // offset -> fill byte
  let size = GIB; // what resize() has finished
  let count = 0;
  // A write into a fresh L2 table (a new L1 entry) while half the tables are
  // free, else into a table already there; its own cluster, its own byte.
  const next = (b: Buffer): number => {
    const tables = size / TABLE_SPAN;
    let off: number;
    do {
      let slot = rand(tables);
      if (used.size < tables / 2) while (used.has(slot)) slot = rand(tables);
      used.add(slot);
      off = slot * TABLE_SPAN + rand(TABLE_SPAN / CLUSTER) * CLUSTER;
    } while (written.has(off));
    b.fill((count++ % 251) + 1);
    fs.writeSync(shadow, b, 0, CLUSTER, off);
    written.set(off, b[0]!);
    return off;
  };
  // CHAINS raw writes in flight at all times, each completion submitting the
  // next, so parked allocations keep arriving while resize() runs.
  let stop = false;
  let running = CHAINS;
  let failed = 0;
  let done: () => void = () => {};
  const chainsDone = new Promise<void>((r) => (done = r));
  const submit = (j: number): void => {
    ring.raw.prepare(0, j, OP.write, dev.handle, j, 0, CLUSTER, next(bufs[j]!), TAG.simple);
    ring.raw.submit(1);
  };
  ring.raw.onComplete = (cq, n) => {
    for (let i = 0; i < n; i++) {
      const j = cq[i * 4]!;
      if (cq[i * 4 + 1] !== CLUSTER) failed++;
      if (stop) {
        if (--running === 0) done();
      } else {
        submit(j);
      }
    }
  };
  for (let j = 0; j < CHAINS; j++) submit(j);
  const promised: Promise<number>[] = [];
  for (let k = 0; k < RESIZES; k++) {
    for (let w = rand(8); w > 0; w--) await new Promise((r) => setTimeout(r, 1));
    const b = Buffer.alloc(CLUSTER);
    promised.push(dev.write(b, next(b))); // the gate's path, alongside
    await dev.resize(size + GIB); // one more L1 cluster each time (512 entries of 2 MiB)
    size += GIB;
    expect(dev.size).toBe(size);
  }
  stop = true;
  await chainsDone;
  expect(await Promise.all(promised)).toEqual(promised.map(() => CLUSTER));
  expect(failed).toBe(0);
  expect(count).toBeGreaterThan(RESIZES * CHAINS);
  fs.ftruncateSync(shadow, size);
  fs.closeSync(shadow);
  // Every write reads back before close, then from disk through qemu-img.
  const back = Buffer.alloc(CLUSTER);
  let wrong = 0;
  for (const [off, byte] of written) {
    await dev.read(back, off);
    if (!back.every((x) => x === byte)) wrong++;
  }
  expect(wrong).toBe(0);
  await ring.close();
  expectCheckClean(img);
  expectSameAsRaw(img, shadowPath);
}, 120_000);
