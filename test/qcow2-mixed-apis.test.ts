// One scheduler for tags on a qcow2 image: Promise calls and ring.raw
// records naming dev.handle order with each other as on a raw device. An
// ORDERED Promise write waits for older raw records (here: SIMPLE writes into
// fresh clusters, which the format layer allocates first) and newer raw
// records wait for it; the last writer of a range is the one the tags say.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { OP, Ring, TAG } from '../dist/lib/index.js';
import { check, qemuImg, qemuIo } from './helpers/qemu';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

const SIZE = 8 << 20;
const CLUSTER = 65536;

function overlay(name: string): string {
  const base = path.join(t.dir, `${name}.raw`);
  const img = path.join(t.dir, `${name}.qcow2`);
  qemuImg('create', '-q', '-f', 'raw', base, String(SIZE));
  qemuIo('-f', 'raw', '-c', `write -P 0x5a 0 ${SIZE}`, base);
  qemuImg('create', '-q', '-f', 'qcow2', '-o', `cluster_size=${CLUSTER}`, '-b', base, '-F', 'raw', img);
  return img;
}

it('an ORDERED Promise write runs after older raw records and before newer ones', async () => {
  const img = overlay('mixed');
  const ring = new Ring();
  const dev = await ring.open(img, { format: 'qcow2' });
  const bufs = Array.from({ length: 9 }, (_, i) => Buffer.alloc(4096, i + 1));
  ring.raw.registerBuffers(bufs);
  const done: number[] = [];
  let waiting = 0;
  let wake: () => void = () => {};
  ring.raw.onComplete = (cq, count) => {
    for (let i = 0; i < count; i++) {
      expect(cq[i * 4 + 1]).toBe(4096);
      done.push(cq[i * 4]!);
    }
    if ((waiting -= count) === 0) wake();
  };
  const rawIdle = (): Promise<void> => (waiting === 0 ? Promise.resolve() : new Promise((r) => (wake = r)));
  for (let round = 0; round < 10; round++) {
    const base = round * (8 * CLUSTER);
    done.length = 0;
    // Eight raw SIMPLE writes, each into a fresh cluster of the overlay (the
    // format layer copies the backing's cluster up first), then an ORDERED
    // Promise write over the first one's range.
    for (let i = 0; i < 8; i++) ring.raw.prepare(i, i, OP.write, dev.handle, i, 0, 4096, base + i * CLUSTER + 100, TAG.simple);
    waiting = 8;
    ring.raw.submit(8);
    const ordered = Buffer.alloc(4096, 0xee);
    const p = dev.write(ordered, base + 100, { tag: 'ordered' }).then((n) => {
      // Every older raw record completed first (the newer one may complete in
      // the same wakeup, before this callback runs: its order is checked below).
      expect([...done.slice(0, 8)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      return n;
    });
    await Promise.resolve(); // the Promise request is on its way to the engine
    // A newer raw SIMPLE write over the same range must land after it.
    ring.raw.prepare(0, 8, OP.write, dev.handle, 8, 0, 4096, base + 100, TAG.simple);
    waiting++;
    ring.raw.submit(1);
    expect(await p).toBe(4096);
    await rawIdle();
    expect(done.indexOf(8)).toBe(8); // after the eight older ones
    const back = Buffer.alloc(4096);
    await dev.read(back, base + 100);
    expect(back.every((x) => x === 9)).toBe(true); // raw 0, then the ORDERED write, then raw 8
    await dev.read(back, base + CLUSTER + 100);
    expect(back.every((x) => x === 2)).toBe(true);
  }
  await ring.close();
  expect(check(img).status).toBe(0);
});

it('an ORDERED Promise flush and discard order with raw records too', async () => {
  const img = overlay('mixed-flush');
  const ring = new Ring();
  const dev = await ring.open(img, { format: 'qcow2' });
  const bufs = [Buffer.alloc(4096, 0x11)];
  ring.raw.registerBuffers(bufs);
  const done: number[] = [];
  ring.raw.onComplete = (cq, count) => {
    for (let i = 0; i < count; i++) done.push(cq[i * 4]!);
  };
  // A raw write into a fresh cluster, then an ORDERED discard of that cluster:
  // the discard runs after the write, so the range reads as zeros.
  ring.raw.prepare(0, 0, OP.write, dev.handle, 0, 0, 4096, 3 * CLUSTER, TAG.simple);
  ring.raw.submit(1);
  await dev.discard(3 * CLUSTER, CLUSTER, { tag: 'ordered' });
  expect(done).toEqual([0]);
  const back = Buffer.alloc(4096, 1);
  await dev.read(back, 3 * CLUSTER);
  expect(back.every((x) => x === 0)).toBe(true);
  ring.raw.prepare(0, 1, OP.write, dev.handle, 0, 0, 4096, 5 * CLUSTER, TAG.simple);
  ring.raw.submit(1);
  await dev.flush({ tag: 'ordered' });
  expect(done).toEqual([0, 1]);
  await ring.close();
  expect(check(img).status).toBe(0);
});
