// Buffers the kernel may use after the call returns (in flight, registered)
// can never be freed under it: transferring one (structuredClone, postMessage)
// copies instead of detaching, a resizable ArrayBuffer (which could shrink)
// is refused up front, and a detached DataView is a coded TypeError.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OP, Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

// ES2024 constructors the TypeScript lib in use does not declare yet.
type Resizable = new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
type Growable = new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer;

const ENGINES = ['io_uring', 'libaio', 'threads', 'mmap'] as const;

describe.each(ENGINES)('%s', (engine) => {
  it('a registered buffer transferred away stays the raw read target', async () => {
    const file = path.join(t.dir, `${engine}-raw.img`);
    fs.writeFileSync(file, Buffer.alloc(65536, 0x5a));
    const ring = new Ring({ engine });
    const dev = await ring.open(file);
    const bufs = Array.from({ length: 4 }, () => Buffer.alloc(4096));
    ring.raw.registerBuffers(bufs);
    const moved = structuredClone(bufs[1]!.buffer, { transfer: [bufs[1]!.buffer] }) as ArrayBuffer;
    expect(bufs[1]!.byteLength).toBe(4096); // copied, not detached
    expect(moved.byteLength).toBeGreaterThanOrEqual(4096);
    const done = new Promise<number>((resolve) => {
      ring.raw.onComplete = (cq) => resolve(cq[1]!);
    });
    ring.raw.prepare(0, 1, OP.read, dev, 1, 0, 4096, 0);
    ring.raw.submit(1);
    expect(await done).toBe(4096);
    expect(bufs[1]!.every((b) => b === 0x5a)).toBe(true);
    for (const i of [0, 2, 3]) expect(bufs[i]!.every((b) => b === 0)).toBe(true);
    await ring.close();
  });

  it('a buffer transferred while its read is in flight is not detached', async () => {
    const file = path.join(t.dir, `${engine}-inflight.img`);
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 0x33));
    const ring = new Ring({ engine });
    const dev = await ring.open(file);
    const buf = Buffer.alloc(1 << 20);
    const p = dev.read(buf, 0);
    structuredClone(buf.buffer, { transfer: [buf.buffer] });
    expect(buf.byteLength).toBe(1 << 20);
    expect(await p).toBe(1 << 20);
    expect(buf.every((b) => b === 0x33)).toBe(true);
    await ring.close();
  });
});

it('resizable ArrayBuffers are refused for I/O and registration with ERR_INVALID_ARG_VALUE', async () => {
  const file = path.join(t.dir, 'resizable.img');
  const ring = new Ring({ engine: 'threads' });
  const dev = await ring.open(file, { create: true, size: 65536 });
  const rab = new (ArrayBuffer as unknown as Resizable)(4096, { maxByteLength: 8192 });
  const view = new Uint8Array(rab);
  const refused = { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' };
  await expect(dev.read(view, 0)).rejects.toMatchObject(refused);
  await expect(dev.write(view, 0)).rejects.toMatchObject(refused);
  await expect(dev.readv([Buffer.alloc(4), view], 0)).rejects.toMatchObject(refused);
  await expect(ring.submit([{ op: 'read', dev, buffer: new DataView(rab), offset: 0 }])).rejects.toMatchObject(refused);
  expect(() => ring.raw.registerBuffers([view])).toThrow(expect.objectContaining(refused));
  // A growable SharedArrayBuffer only grows: fine.
  const gsab = new (SharedArrayBuffer as unknown as Growable)(4096, { maxByteLength: 8192 });
  expect(await dev.write(new Uint8Array(gsab).fill(9), 0)).toBe(4096);
  await ring.close();
});

it('a DataView over a detached buffer is a TypeError with a code', async () => {
  const file = path.join(t.dir, 'detached.img');
  const ring = new Ring({ engine: 'threads' });
  const dev = await ring.open(file, { create: true, size: 65536 });
  const ab = new ArrayBuffer(16);
  const dv = new DataView(ab);
  structuredClone(ab, { transfer: [ab] });
  await expect(dev.read(dv, 0)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  await expect(dev.writev([dv], 0)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  await ring.close();
});
