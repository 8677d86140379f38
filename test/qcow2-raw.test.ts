// ring.raw records naming a qcow2 image (dev.handle): the engine splits
// them by the image's native cluster map; misses, allocation and flushes go
// to the format layer and back. Checked with qemu-img check and compare,
// completion order for tags, and a failing resolution (a corrupt L2 entry)
// that must come back as an error, never a hang.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { OP, Ring, TAG } from '../dist/lib/index.js';
import { check, qemuImg, qemuIo } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

const SIZE = 8 << 20;

function overlay(name: string): { base: string; img: string } {
  const base = path.join(t.dir, `${name}.raw`);
  const img = path.join(t.dir, `${name}.qcow2`);
  qemuImg('create', '-q', '-f', 'raw', base, String(SIZE));
  qemuIo('-f', 'raw', '-c', `write -P 0x5a 0 ${SIZE}`, base);
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', base, '-F', 'raw', img);
  return { base, img };
}

function raws(ring: Ring): { run: (recs: Array<[number, number, number, number, number]>, dev: number) => Promise<Array<[number, number]>> } {
  const raw = ring.raw;
  return {
    run: (recs, dev) => new Promise((resolve) => {
      const out: Array<[number, number]> = [];
      raw.onComplete = (cq, count) => {
        for (let i = 0; i < count; i++) out.push([cq[i * 4]!, cq[i * 4 + 1]!]);
        if (out.length === recs.length) resolve(out);
      };
      // [op, buf, length, offset, tag]
      recs.forEach(([op, buf, length, offset, tag], i) => raw.prepare(i, i, op, dev, buf, 0, length, offset, tag));
      raw.submit(recs.length);
    }),
  };
}

it('reads and writes a qcow2 overlay through ring.raw; qemu-img check and compare agree', async () => {
  const { img } = overlay('rw');
  const shadow = Buffer.alloc(SIZE, 0x5a);
  const ring = new Ring();
  const dev = await ring.open(img, { format: 'qcow2' });
  const bufs = Array.from({ length: 32 }, () => Buffer.alloc(8192));
  ring.raw.registerBuffers(bufs);
  const q = raws(ring);
  const rand = rng(14);
  for (let round = 0; round < 20; round++) {
    const recs: Array<[number, number, number, number, number]> = [];
    const used = new Set<number>();
    for (let i = 0; i < 32; i++) {
      const len = 1 + Math.floor(rand() * 8192);
      // Disjoint ranges inside one round (SIMPLE requests may run in any order).
      let off: number;
      do off = Math.floor(rand() * (SIZE - len)); while (used.has(Math.floor(off / 16384)) || used.has(Math.floor((off + len) / 16384)));
      used.add(Math.floor(off / 16384));
      used.add(Math.floor((off + len) / 16384));
      if (rand() < 0.6) {
        bufs[i]!.fill(round * 32 + i + 1);
        bufs[i]!.copy(shadow, off, 0, len);
        recs.push([OP.write, i, len, off, TAG.simple]);
      } else {
        recs.push([OP.read, i, len, off, TAG.simple]);
      }
    }
    const before = recs.map(([op, , len, off]) => (op === OP.read ? Buffer.from(shadow.subarray(off, off + len)) : null));
    const res = await q.run(recs, dev.handle);
    for (const [id, result] of res) {
      expect(result).toBe(recs[id]![2]);
      const want = before[id];
      if (want) expect(bufs[id]!.subarray(0, want.length).equals(want)).toBe(true);
    }
  }
  const flushed = await q.run([[OP.flush, 0, 0, 0, TAG.ordered]], dev.handle);
  expect(flushed[0]![1]).toBe(0);
  await ring.close();
  expect(check(img).status).toBe(0);
  const shadowPath = path.join(t.dir, 'rw-shadow.raw');
  fs.writeFileSync(shadowPath, shadow);
  expect(qemuImg('compare', '-f', 'raw', '-F', 'qcow2', shadowPath, img).status).toBe(0);
});

it('orders raw records on a qcow2 image by their tags', async () => {
  const { img } = overlay('tags');
  const ring = new Ring();
  const dev = await ring.open(img, { format: 'qcow2' });
  const bufs = Array.from({ length: 9 }, (_, i) => Buffer.alloc(4096, i + 1));
  ring.raw.registerBuffers(bufs);
  const q = raws(ring);
  for (let round = 0; round < 10; round++) {
    const base = round * (512 << 10);
    // Eight SIMPLE writes into fresh clusters (each allocates), then an ORDERED one over the first.
    const recs: Array<[number, number, number, number, number]> = [];
    for (let i = 0; i < 8; i++) recs.push([OP.write, i, 4096, base + i * 65536 + 100, TAG.simple]);
    recs.push([OP.write, 8, 4096, base + 100, TAG.ordered]);
    const res = await q.run(recs, dev.handle);
    expect(res[res.length - 1]![0]).toBe(8); // completed after every older request
    const back = Buffer.alloc(4096);
    await dev.read(back, base + 100);
    expect(back.every((x) => x === 9)).toBe(true);
  }
  await ring.close();
  expect(check(img).status).toBe(0);
});

it('a resolution that fails (corrupt L2 entry) fails the request with an error, and nothing hangs', async () => {
  const img = path.join(t.dir, 'bad.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', img, String(SIZE));
  qemuIo('-f', 'qcow2', '-c', 'write -P 0x33 0 65536', '-c', 'write -P 0x44 65536 65536', img);
  // Point guest cluster 0 past the end of the file.
  const fd = fs.openSync(img, 'r+');
  const head = Buffer.alloc(64);
  fs.readSync(fd, head, 0, 64, 0);
  const l1 = Number(head.readBigUInt64BE(40));
  const e = Buffer.alloc(8);
  fs.readSync(fd, e, 0, 8, l1);
  const l2 = Number(e.readBigUInt64BE(0) & 0x00fffffffffffe00n);
  const bad = Buffer.alloc(8);
  bad.writeBigUInt64BE((1n << 63n) | (1n << 40n));
  fs.writeSync(fd, bad, 0, 8, l2);
  fs.closeSync(fd);

  const ring = new Ring();
  const dev = await ring.open(img, { format: 'qcow2', readOnly: true });
  const bufs = [Buffer.alloc(4096), Buffer.alloc(4096)];
  ring.raw.registerBuffers(bufs);
  const res = await raws(ring).run([[OP.read, 0, 4096, 0, TAG.simple], [OP.read, 1, 4096, 65536, TAG.simple]], dev.handle);
  const byId = new Map(res.map(([id, r]) => [id, r]));
  expect(byId.get(0)).toBeLessThan(0); // -EIO
  expect(byId.get(1)).toBe(4096);
  expect(bufs[1]!.every((x) => x === 0x44)).toBe(true);
  await expect(dev.read(Buffer.alloc(4096), 0)).rejects.toMatchObject({ code: 'ERR_QCOW2_CORRUPT' });
  await ring.close();
});
