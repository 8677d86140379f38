import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { check, expectCheckClean, expectSameAsRaw, qemuImg } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

const CS = 64 << 10;

// region.buffer and dev.write/dev.read/dev.writeZeroes on one mapped qcow2
// device see each other's bytes, whichever path allocated the cluster; the
// image on disk agrees (qemu-img compare) and stays consistent (qemu-img check).
describe('qcow2 map: the mapping and device requests stay coherent', () => {
  let t: ReturnType<typeof tempDir>;
  let ring: Ring;
  beforeEach(() => {
    t = tempDir();
    ring = new Ring();
  });
  afterEach(async () => {
    await ring.close();
    t.cleanup();
  });

  it('interleaves stores and device writes within one cluster, and across clusters', async () => {
    const base = path.join(t.dir, 'base.raw');
    const ov = path.join(t.dir, 'ov.qcow2');
    const size = 4 << 20;
    const data = Buffer.alloc(size);
    const r = rng(17);
    for (let i = 0; i < size; i++) data[i] = (r() * 256) | 0;
    fs.writeFileSync(base, data);
    expect(qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', ov).status).toBe(0);
    const dev = await ring.open(ov, { format: 'qcow2' });
    const region = await dev.map();
    const b = region.buffer;
    const want = Buffer.from(data);
    const got = Buffer.alloc(size);

    // One cluster: the first write comes from the device (it copies the cluster up), then both paths alternate.
    const c = 5 * CS;
    for (let round = 0; round < 8; round++) {
      const off = c + ((r() * (CS - 600)) | 0);
      if (round % 2 === 0) {
        const w = Buffer.alloc(300, round + 1);
        await dev.write(w, off);
        w.copy(want, off);
      } else {
        b.fill(round + 1, off, off + 300);
        want.fill(round + 1, off, off + 300);
      }
      expect(b.subarray(c, c + CS).equals(want.subarray(c, c + CS))).toBe(true);
      await dev.read(got.subarray(c, c + CS), c);
      expect(got.subarray(c, c + CS).equals(want.subarray(c, c + CS))).toBe(true);
    }
    // Another cluster: the first write comes from a store (the fault copies it up), then the device.
    const d = 9 * CS + 4096;
    b.fill(0xee, d, d + 10);
    want.fill(0xee, d, d + 10);
    await dev.write(Buffer.alloc(20, 0xdd), d + 5);
    want.fill(0xdd, d + 5, d + 25);
    // writeZeroes over a whole mapped cluster keeps it mapped and zero; over a shared one, it is copied up first.
    await dev.writeZeroes(12 * CS, 2 * CS);
    want.fill(0, 12 * CS, 14 * CS);
    b[12 * CS + 7] = 1;
    want[12 * CS + 7] = 1;
    expect(b.equals(want)).toBe(true);
    await dev.read(got, 0);
    expect(got.equals(want)).toBe(true);

    await region.sync();
    await dev.close();
    expect(fs.readFileSync(base).equals(data)).toBe(true);
    const expected = path.join(t.dir, 'want.raw');
    fs.writeFileSync(expected, want);
    expectSameAsRaw(ov, expected);
    expectCheckClean(ov);
    // The clusters written exist in the overlay, the rest still come from the base.
    const map = JSON.parse(qemuImg('map', '--output=json', ov).out) as Array<{ start: number; length: number; depth: number }>;
    const inOverlay = map.filter((e) => e.depth === 0).reduce((n, e) => n + e.length, 0);
    expect(inOverlay).toBe(4 * CS);
  });

  it('maps an image without a backing file: zero pages until written', async () => {
    const ov = path.join(t.dir, 'plain.qcow2');
    expect(qemuImg('create', '-q', '-f', 'qcow2', ov, '1M').status).toBe(0);
    const dev = await ring.open(ov, { format: 'qcow2' });
    const region = await dev.map();
    expect(region.buffer.every((x) => x === 0)).toBe(true);
    region.buffer.fill(3, 100, 200);
    await region.sync();
    await dev.close();
    const out = qemuImg('compare', '-f', 'qcow2', '-F', 'raw', ov, writeExpected(t.dir, 1 << 20, (w) => w.fill(3, 100, 200)));
    expect(out.out).toContain('Images are identical');
    expect(check(ov).status).toBe(0);
  });
});

function writeExpected(dir: string, size: number, edit: (b: Buffer) => void): string {
  const b = Buffer.alloc(size);
  edit(b);
  const p = path.join(dir, 'expected.raw');
  fs.writeFileSync(p, b);
  return p;
}
