// Crash consistency of qcow2 writes, judged by qemu-img. A WriteLog records
// every write and flush the engine issues to the image file (guest data the
// cluster map sends straight there, and the format layer's metadata); crash
// images are rebuilt at points after every completed flush (what it made
// durable plus random subsets of what came after). Each must pass
// `qemu-img check` (leaks allowed, no errors) and hold every guest write
// acknowledged before the last guest flush that completed before the crash.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Ring, WriteLog } from '../dist/lib/index.js';
import { qemuImg } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

const SIZE = 8 << 20;
const SLOT = 48 << 10; // guest writes never overlap: one per slot, so each has one right answer

interface GuestWrite {
  offset: number;
  data: Buffer;
  acked: number; // log sequence number when it resolved
}

it('every crash state passes qemu-img check and keeps what the guest flushed', async () => {
  const rand = rng(Number(process.env.BLOCKRING_SEED ?? 0xc4a5));
  const base = path.join(t.dir, 'base.raw');
  fs.writeFileSync(base, Buffer.alloc(SIZE, 0xaa));
  const img = path.join(t.dir, 'overlay.qcow2');
  // 4 KiB clusters, a small cache: many L2 tables and refcount blocks, evictions.
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', base, '-F', 'raw', img);
  const initial = fs.readFileSync(img);
  const log = new WriteLog();
  const ring = new Ring({ depth: 32 });
  const dev = await ring.open(img, { format: 'qcow2', writeLog: log, cacheSize: 32 << 10 });
  // The log is the engine's: the image keeps its native cluster map, so the
  // states below are those of the path every image takes.
  expect(dev.handle).toBeGreaterThanOrEqual(0);
  const slots = Array.from({ length: SIZE / SLOT }, (_, i) => i);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  const writes: GuestWrite[] = [];
  const guestFlushes: Array<{ issued: number; completed: number }> = [];
  let next = 0;
  for (let round = 0; round < 12 && next < slots.length; round++) {
    // A burst of writes in flight together (some into one fresh cluster), then a guest flush.
    const burst: Promise<void>[] = [];
    const n = 4 + Math.floor(rand() * 8);
    for (let k = 0; k < n && next < slots.length; k++) {
      const slot = slots[next++]!;
      const len = 1 + Math.floor(rand() * (rand() < 0.5 ? 3000 : SLOT - 1));
      const offset = slot * SLOT + Math.floor(rand() * (SLOT - len));
      const data = Buffer.alloc(len, 1 + ((next * 7) % 250));
      data.writeUInt32LE(next, 0 % Math.max(1, len - 4));
      const w: GuestWrite = { offset, data, acked: 0 };
      // Both APIs: the engine splits each by the cluster map and parks what needs allocation.
      const done = rand() < 0.5 ? dev.write(data, offset)
        : ring.submit([{ op: 'write', dev, buffer: data, offset }]).then(([r]) => {
          if (r!.error) throw r!.error;
        });
      burst.push(done.then(() => {
        w.acked = log.now();
        writes.push(w);
      }));
    }
    if (rand() < 0.3) burst.push(dev.discard(slots[next++]! * SLOT, 4096).then(() => undefined));
    await Promise.all(burst);
    const f = { issued: log.now(), completed: 0 };
    await dev.flush();
    f.completed = log.now();
    guestFlushes.push(f);
  }
  await dev.close();
  await ring.close();

  const hostFlushes = log.flushes();
  expect(hostFlushes.length).toBeGreaterThan(12);
  expect(log.entries.filter((e) => e.kind === 'write').length).toBeGreaterThan(100);
  const crashImg = path.join(t.dir, 'crash.qcow2');
  const rawOut = path.join(t.dir, 'crash.raw');
  let states = 0;
  for (let i = 0; i < hostFlushes.length; i++) {
    const f = hostFlushes[i]!;
    const end = hostFlushes[i + 1]?.completed ?? log.now();
    // The prefix ending at this flush, and two random points after it with random subsets.
    const points: Array<[number, number]> = [[f.completed + 1, 0]];
    for (let k = 0; k < 2; k++) points.push([f.completed + 1 + Math.floor(rand() * Math.max(1, end - f.completed - 1)), rand()]);
    for (const [crashAt, p] of points) {
      const image = log.crashImage(initial, crashAt, () => rand() < p);
      fs.writeFileSync(crashImg, image);
      const c = qemuImg('check', '-f', 'qcow2', crashImg);
      // 0: clean, 3: leaked clusters only. 2 would be corruption.
      if (c.status !== 0 && c.status !== 3) throw new Error(`crash state at ${crashAt} (after host flush ${i}): ${c.out}`);
      const lastGuest = guestFlushes.filter((g) => g.completed < crashAt).pop();
      const must = lastGuest ? writes.filter((w) => w.acked < lastGuest.issued) : [];
      if (must.length) {
        fs.rmSync(rawOut, { force: true });
        execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', crashImg, rawOut]);
        const raw = fs.readFileSync(rawOut);
        for (const w of must) {
          if (!raw.subarray(w.offset, w.offset + w.data.length).equals(w.data)) {
            throw new Error(`crash state at ${crashAt} lost a flushed write at ${w.offset} (${w.data.length} bytes)`);
          }
        }
      }
      states++;
    }
  }
  expect(states).toBeGreaterThan(36);
}, 240_000);
