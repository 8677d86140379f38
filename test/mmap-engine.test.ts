import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { BlockringError, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';
import { rng } from './helpers/tmp';

// The mmap engine serves the same requests with the same results, tags,
// batches and errors as the other engines.
describe('mmap engine', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let file: string;
  withDevice({ ring: { engine: 'mmap', depth: 32 }, open: { size: 1 << 20 }, name: 'disk.img' }, (f) => {
    ({ ring, dev, file } = f);
  });

  it('a shrinking resize is seen by the next request (short read, not EIO)', async () => {
    const grow = await ring.open(file, { growable: true });
    await grow.write(Buffer.alloc(65536, 3), 0);
    expect(await grow.read(Buffer.alloc(65536), 0)).toBe(65536); // maps the whole file
    await grow.resize(4096);
    const r = Buffer.alloc(65536);
    expect(await grow.read(r, 0)).toBe(4096);
    expect(r.subarray(0, 4096).every((b) => b === 3)).toBe(true);
    expect(await grow.write(Buffer.alloc(100, 9), 8192)).toBe(100); // extends again
    expect(grow.size).toBe(8292);
    await grow.close();
  });

  it('reports its name and depth', () => {
    expect(ring.engine).toBe('mmap');
    expect(ring.depth).toBe(32);
  });

  it('read/write round-trip, visible to node:fs', async () => {
    const w = Buffer.alloc(8192);
    for (let i = 0; i < w.length; i++) w[i] = (i * 3) & 0xff;
    expect(await dev.write(w, 4096 + 17)).toBe(8192);
    const r = Buffer.alloc(8192);
    expect(await dev.read(r, 4096 + 17)).toBe(8192);
    expect(r.equals(w)).toBe(true);
    expect(fs.readFileSync(file).subarray(4113, 4113 + 8192).equals(w)).toBe(true);
  });

  it('readv/writev scatter and gather', async () => {
    const parts = [Buffer.alloc(100, 1), Buffer.alloc(5000, 2), new Uint8Array(3).fill(3)];
    expect(await dev.writev(parts, 9000)).toBe(5103);
    const outs = [Buffer.alloc(5000), Buffer.alloc(103)];
    expect(await dev.readv(outs, 9000)).toBe(5103);
    expect(Buffer.concat(outs).equals(Buffer.concat(parts))).toBe(true);
  });

  it('reads past the end are short; on a growable device writes past it extend the file', async () => {
    await expect(dev.write(Buffer.alloc(16, 9), (1 << 20) - 8)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    const grow = await ring.open(file, { growable: true });
    await grow.write(Buffer.alloc(16, 9), (1 << 20) - 8);
    const size = (1 << 20) + 8;
    expect(grow.size).toBe(size);
    const r = Buffer.alloc(64);
    expect(await grow.read(r, size - 4)).toBe(4);
    expect(await grow.read(r, size + 100)).toBe(0);
    // Appends far past the mapping grow it (and the file) as pwrite would.
    for (let i = 0; i < 20; i++) await grow.write(Buffer.alloc(4096, i), size + i * 4096);
    expect(grow.size).toBe(size + 20 * 4096);
    const back = Buffer.alloc(4096);
    await grow.read(back, size + 19 * 4096);
    expect(back.every((b) => b === 19)).toBe(true);
    expect(fs.statSync(file).size).toBe(size + 20 * 4096);
  });

  it('flush, fua, discard and writeZeroes', async () => {
    await dev.write(Buffer.alloc(65536, 0xcc), 0, { fua: true });
    await dev.flush();
    await dev.flush({ metadata: true });
    expect(await dev.discard(0, 8192)).toBe(8192);
    expect(await dev.writeZeroes(8192, 4096)).toBe(4096);
    const r = Buffer.alloc(16384);
    await dev.read(r, 0);
    expect(r.subarray(0, 12288).every((b) => b === 0)).toBe(true);
    expect(r.subarray(12288).every((b) => b === 0xcc)).toBe(true);
  });

  it('batches: one result per request, in order', async () => {
    const rand = rng(6);
    const reqs = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const b = Buffer.alloc(512 + Math.floor(rand() * 4096), i);
      expected.push(b);
      reqs.push({ op: 'write' as const, dev, buffer: b, offset: i * 8192 });
    }
    const res = await ring.submit(reqs);
    expect(res.map((r) => r.bytes)).toEqual(expected.map((b) => b.length));
    const reads = expected.map((b, i) => ({ op: 'read' as const, dev, buffer: Buffer.alloc(b.length), offset: i * 8192 }));
    const rres = await ring.submit(reads);
    rres.forEach((r, i) => expect(r.error).toBeUndefined());
    reads.forEach((r, i) => expect(r.buffer.equals(expected[i]!)).toBe(true));
  });

  it('honours ORDERED and HEAD OF QUEUE tags', async () => {
    const tracing = new Ring({ engine: 'mmap', depth: 8, trace: true });
    const d = await tracing.open(file);
    const b = () => Buffer.alloc(4096, 1);
    const res = await tracing.submit([
      { op: 'write', dev: d, buffer: b(), offset: 0 },
      { op: 'write', dev: d, buffer: b(), offset: 4096 },
      { op: 'flush', dev: d, tag: 'ordered' },
      { op: 'write', dev: d, buffer: b(), offset: 8192 },
      { op: 'write', dev: d, buffer: b(), offset: 12288, tag: 'head' },
    ]);
    const [w0, w1, fl, w3, head] = res.map((r) => r as Required<typeof r>);
    expect(res.every((r) => r.error === undefined)).toBe(true);
    // ORDERED: issued after everything before it completed; nothing after it issued before it completed.
    expect(fl!.issued).toBeGreaterThan(Math.max(w0!.completed, w1!.completed));
    expect(w3!.issued).toBeGreaterThan(fl!.completed);
    // HEAD OF QUEUE: issued on arrival, ahead of the ORDERED and SIMPLE requests queued before it.
    expect(head!.issued).toBeLessThan(fl!.issued);
    expect(head!.issued).toBeLessThan(w3!.issued);
    await tracing.close();
  });

  it('rejects writes on a read-only device like every engine', async () => {
    const ro = await ring.open(file, { readOnly: true });
    await expect(ro.write(Buffer.alloc(1), 0)).rejects.toBeInstanceOf(BlockringError);
    const r = Buffer.alloc(10);
    expect(await ro.read(r, 0)).toBe(10);
  });

  it('never serves a closed device from its old mapping when the handle is reused', async () => {
    const other = path.join(path.dirname(file), 'other.img');
    fs.writeFileSync(other, Buffer.alloc(1 << 20, 0xbb));
    await dev.write(Buffer.alloc(4096, 0xaa), 0);
    const handle = dev.handle;
    await dev.close();
    const dev2 = await ring.open(other);
    expect(dev2.handle).toBe(handle);
    const r = Buffer.alloc(4096);
    await dev2.read(r, 0);
    expect(r.every((b) => b === 0xbb)).toBe(true);
  });
});
