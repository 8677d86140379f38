// O_DIRECT on files: geometry from statx/probing, aligned I/O, and
// misaligned requests refused with a RangeError before submission.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { allocAligned, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let dir: string;
let ring: Ring;
let dev: BlockDevice;
let file: string;
withDevice({ ring: { depth: 32 }, open: { size: 1 << 20, direct: true }, name: 'img', scope: 'all' }, (f) => {
  ({ dir, ring, dev, file } = f);
});

it('reports alignment and geometry', () => {
  expect(dev.direct).toBe(true);
  expect(dev.isBlockDevice).toBe(false);
  expect(dev.size).toBe(1 << 20);
  for (const v of [dev.offsetAlignment, dev.memoryAlignment, dev.logicalBlockSize]) {
    expect(v).toBeGreaterThanOrEqual(1);
    expect(v & (v - 1)).toBe(0);
  }
  expect(dev.offsetAlignment).toBeGreaterThanOrEqual(512);
});

it('aligned O_DIRECT reads and writes work', async () => {
  const a = dev.offsetAlignment;
  const w = allocAligned(4 * a, dev);
  w.fill(0x3c);
  expect(await dev.write(w, 2 * a)).toBe(4 * a);
  const r = allocAligned(4 * a, dev);
  expect(await dev.read(r, 2 * a)).toBe(4 * a);
  expect(r.equals(w)).toBe(true);
  expect(fs.readFileSync(file).subarray(2 * a, 6 * a).equals(w)).toBe(true);
  const parts = [allocAligned(a, dev), allocAligned(2 * a, dev)];
  expect(await dev.readv(parts, 2 * a)).toBe(3 * a);
});

it('misaligned offsets, lengths and addresses get a RangeError naming the alignment', async () => {
  const a = dev.offsetAlignment;
  const good = allocAligned(2 * a, dev);
  const cases: [string, Promise<number>][] = [
    ['offset', dev.read(good, 1)],
    ['length', dev.read(good.subarray(0, a - 1), 0)],
    ['address', dev.read(allocAligned(2 * a, dev).subarray(dev.memoryAlignment === 1 ? 0 : 1, a + 1), 0)],
    ['writev length', dev.writev([good.subarray(0, 100), good.subarray(0, a - 100)], 0)],
  ];
  for (const [what, p] of cases) {
    if (what === 'address' && dev.memoryAlignment === 1) continue;
    const e = await p.catch((x: unknown) => x);
    expect(e, what).toBeInstanceOf(RangeError);
    expect((e as { code: string }).code).toBe('ERR_MISALIGNED');
    expect((e as Error).message).toMatch(/not a multiple of \d+/);
  }
});

it('a misaligned request rejects alone; its neighbours in the same tick still run', async () => {
  const a = dev.offsetAlignment;
  const ok1 = dev.write(allocAligned(a, dev).fill(1), 0);
  const bad = dev.write(allocAligned(a, dev), 3);
  const ok2 = dev.write(allocAligned(a, dev).fill(2), a);
  await expect(bad).rejects.toThrow(RangeError);
  expect(await ok1).toBe(a);
  expect(await ok2).toBe(a);
});

it('a misaligned request in a batch rejects the whole batch', async () => {
  const a = dev.offsetAlignment;
  const before = fs.readFileSync(file).subarray(0, a);
  const b = allocAligned(a, dev).fill(7);
  await expect(ring.submit([
    { op: 'write', dev, buffer: b, offset: 0 },
    { op: 'write', dev, buffer: b, offset: 5 },
  ])).rejects.toMatchObject({ code: 'ERR_MISALIGNED' });
  expect(fs.readFileSync(file).subarray(0, a).equals(before)).toBe(true);
});

it('the read-probing fallback finds the same alignment as statx', async () => {
  process.env.BLOCKRING_PROBE_ALIGNMENT = '1';
  try {
    const probed = await ring.open(file, { direct: true });
    expect(probed.offsetAlignment).toBe(dev.offsetAlignment);
    expect(probed.memoryAlignment).toBeLessThanOrEqual(dev.memoryAlignment);
    expect(probed.memoryAlignment).toBeGreaterThanOrEqual(1);
    const b = allocAligned(probed.offsetAlignment, probed);
    expect(await probed.read(b, 0)).toBe(b.length);
    await probed.close();
    // A file too short to probe gets the conservative 4096.
    const empty = await ring.open(path.join(dir, 'empty.img'), { create: true, direct: true });
    expect([empty.offsetAlignment, empty.memoryAlignment]).toEqual([4096, 4096]);
    await empty.close();
  } finally {
    delete process.env.BLOCKRING_PROBE_ALIGNMENT;
  }
});

it('O_DIRECT batches submit correctly whatever the submission chunk', async () => {
  const a = dev.offsetAlignment;
  for (const directSubmitBatch of [0, 1, 2, 7]) {
    const r = new Ring({ depth: 16, directSubmitBatch });
    const d = await r.open(file, { direct: true });
    const bufs = Array.from({ length: 40 }, (_, i) => allocAligned(a, d).fill((i + directSubmitBatch) & 0xff));
    const w = await r.submit(bufs.map((buffer, i) => ({ op: 'write' as const, dev: d, buffer, offset: i * a })));
    expect(w.every((x) => x.bytes === a)).toBe(true);
    const back = Array.from({ length: 40 }, () => allocAligned(a, d));
    const rr = await r.submit(back.map((buffer, i) => ({ op: 'read' as const, dev: d, buffer, offset: i * a })));
    expect(rr.every((x) => x.bytes === a)).toBe(true);
    back.forEach((b, i) => expect(b.equals(bufs[i]!)).toBe(true));
    await r.close();
  }
});
