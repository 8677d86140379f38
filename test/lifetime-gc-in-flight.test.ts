// Guards: buffers of in-flight requests freed by GC (JS dropped every
// reference, or emptied its own iovec array) while the kernel still reads or
// writes them.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { fileTempDir } from './helpers/lifetime';

const t = fileTempDir();
declare const gc: () => void;

it('keeps buffers alive while in flight when JS drops every reference and GC runs', async () => {
  expect(typeof gc).toBe('function');
  const ring = new Ring({ depth: 8 });
  const file = path.join(t.dir, 'gc.img');
  const dev = await ring.open(file, { create: true, size: 4096 * 512 });
  // Fire-and-forget writes of fresh buffers: only the ring references them.
  const results: Promise<number>[] = [];
  for (let i = 0; i < 512; i++) results.push(dev.write(Buffer.alloc(4096, (i * 13) & 255), i * 4096));
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(results);
  const back = fs.readFileSync(file);
  for (let i = 0; i < 512; i++) {
    const block = back.subarray(i * 4096, (i + 1) * 4096);
    expect(block.every((b) => b === ((i * 13) & 255))).toBe(true);
  }
  // Reads into dropped buffers must not scribble on reused memory: read into
  // buffers, drop them, GC, then check nothing crashed and the ring is sane.
  let pending = 0;
  for (let i = 0; i < 256; i++) {
    pending++;
    void dev.read(Buffer.alloc(4096), i * 4096).then(() => pending--);
  }
  gc();
  while (pending) await new Promise((r) => setImmediate(r));
  await ring.close();
});

it('buffers stay pinned when the caller empties its own iovec array right after the call', async () => {
  const ring = new Ring({ depth: 2 });
  const file = path.join(t.dir, 'iov-pin.img');
  const dev = await ring.open(file, { create: true, size: 256 * 8192 });
  const pending: Promise<number>[] = [];
  for (let i = 0; i < 256; i++) {
    const bufs = [Buffer.alloc(4096, i & 255), Buffer.alloc(4096, (i + 1) & 255)];
    pending.push(dev.writev(bufs, i * 8192));
    bufs.length = 0; // the caller reuses or drops its array
  }
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  expect((await Promise.all(pending)).every((n) => n === 8192)).toBe(true);
  const back = fs.readFileSync(file);
  for (let i = 0; i < 256; i++) {
    expect(back.subarray(i * 8192, i * 8192 + 4096).every((b) => b === (i & 255))).toBe(true);
    expect(back.subarray(i * 8192 + 4096, (i + 1) * 8192).every((b) => b === ((i + 1) & 255))).toBe(true);
  }
  await ring.close();
});
