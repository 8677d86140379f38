import { describe, expect, it } from 'vitest';

import { addressAlignment, allocAligned, BufferPool, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let ring: Ring;
let dev: BlockDevice;
withDevice({ ring: { depth: 32 }, open: { size: 1 << 20, direct: true }, name: 'img', scope: 'all' }, (f) => {
  ({ ring, dev } = f);
});

function withoutExternalBuffers<T>(fn: () => T): T {
  process.env.BLOCKRING_NO_EXTERNAL_BUFFERS = '1';
  try {
    return fn();
  } finally {
    delete process.env.BLOCKRING_NO_EXTERNAL_BUFFERS;
  }
}

describe('allocAligned', () => {
  it('returns buffers aligned as asked, default 4096', () => {
    for (const align of [512, 4096, 65536]) {
      const b = allocAligned(10_000, align);
      expect(b.length).toBe(10_000);
      expect(addressAlignment(b)).toBeGreaterThanOrEqual(align);
    }
    expect(addressAlignment(allocAligned(1))).toBeGreaterThanOrEqual(4096);
    expect(allocAligned(0).length).toBe(0);
  });

  it('defaults to the device alignment when given a device', () => {
    const b = allocAligned(4096, dev);
    expect(addressAlignment(b)).toBeGreaterThanOrEqual(dev.memoryAlignment);
  });

  it('uses V8-owned memory where external buffers are not allowed (Electron memory cage path)', async () => {
    const b = withoutExternalBuffers(() => allocAligned(8192, 4096));
    // V8-owned: a view into a larger ArrayBuffer, not an exact external one.
    expect(b.buffer.byteLength).toBe(8192 + 4096);
    expect(addressAlignment(b)).toBeGreaterThanOrEqual(4096);
    // And it works for O_DIRECT I/O.
    b.fill(0x42);
    expect(await dev.write(b, 0)).toBe(8192);
    const back = withoutExternalBuffers(() => allocAligned(8192));
    expect(await dev.read(back, 0)).toBe(8192);
    expect(back.equals(b)).toBe(true);
    // The external path allocates exactly what was asked.
    expect(allocAligned(8192).buffer.byteLength).toBe(8192);
  });

  it('rejects bad sizes and alignments', () => {
    expect(() => allocAligned(-1)).toThrow(RangeError);
    expect(() => allocAligned(10, 3)).toThrow(RangeError);
    expect(() => allocAligned(10, 0)).toThrow(RangeError);
    expect(() => allocAligned('10' as never)).toThrow(TypeError);
  });
});

describe('BufferPool', () => {
  it('hands out aligned, distinct buffers and takes them back', () => {
    const pool = new BufferPool(4, 6000);
    const got = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
    expect(pool.acquire()).toBeNull();
    for (const b of got) {
      expect(b!.length).toBe(6000);
      expect(addressAlignment(b!)).toBeGreaterThanOrEqual(4096);
    }
    expect(new Set(got).size).toBe(4);
    pool.release(got[2]!);
    expect(pool.available).toBe(1);
    expect(pool.acquire()).toBe(got[2]);
    expect(() => pool.release(Buffer.alloc(1))).toThrow(TypeError);
  });

  it('registered with a ring, pool buffers carry O_DIRECT I/O (fixed buffers on io_uring)', async () => {
    const pool = new BufferPool(8, 4096);
    const fixed = ring.registerPool(pool);
    expect(typeof fixed).toBe('boolean');
    if (ring.engine === 'io_uring') expect(fixed).toBe(true);
    const bufs = pool.buffers;
    bufs.forEach((b, i) => b.fill(i + 1));
    const w = await ring.submit(bufs.map((buffer, i) => ({ op: 'write' as const, dev, buffer, offset: i * 4096 })));
    expect(w.every((r) => r.bytes === 4096)).toBe(true);
    bufs.forEach((b) => b.fill(0));
    await Promise.all(bufs.map((b, i) => dev.read(b, i * 4096)));
    bufs.forEach((b, i) => expect(b.every((x) => x === i + 1)).toBe(true));
    // A slice of a pool buffer is inside the registered region too.
    expect(await dev.read(bufs[0]!.subarray(0, 512), 0)).toBe(512);
    // Re-registering while requests use the registered buffers is refused.
    const inflight = Array.from({ length: 64 }, (_, i) => dev.read(bufs[i % 8]!, (i % 8) * 4096));
    await Promise.resolve(); // let the microtask flush submit them
    expect(() => ring.registerPool(new BufferPool(2, 4096))).toThrow(expect.objectContaining({ code: 'ERR_BUFFERS_IN_USE' }));
    await Promise.all(inflight);
    expect(typeof ring.registerPool(new BufferPool(2, 4096))).toBe('boolean');
  });
});
