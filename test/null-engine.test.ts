// The null engine: no I/O, configurable latency, fault injection, and the
// same eventfd completion path as the real engines.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { Ring, type NullEngineOptions } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

const B = 4096;

describe('null engine', () => {
  const t = tempDir();
  const file = path.join(t.dir, 'disk');
  fs.writeFileSync(file, Buffer.alloc(16 * B, 0x11));
  let ring: Ring | undefined;
  afterEach(async () => {
    await ring?.close();
    ring = undefined;
  });
  const make = (nullEngine?: NullEngineOptions, depth?: number): Ring => {
    ring = new Ring({ engine: 'null', trace: true, nullEngine, ...(depth ? { depth } : {}) });
    return ring;
  };

  it('validates its options with typed errors', () => {
    const bad: [unknown, string, string][] = [
      [{ latencyUs: -1 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ latencyUs: 1.5 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ latencyUs: 60_000_001 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ latencyUs: [5, 2] }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ latencyUs: [1, 2, 3] }, 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [{ latencyUs: '10' }, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [{ seed: -3 }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ faults: {} }, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [{ faults: [{}] }, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [{ faults: [{ errno: 'ENOTANERRNO' }] }, 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [{ faults: [{ errno: 0 }] }, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [{ faults: [{ errno: 'EIO', op: 'readv' }] }, 'TypeError', 'ERR_INVALID_ARG_VALUE'],
      [{ faults: [{ errno: 'EIO', offsetStart: 10, offsetEnd: 10 }] }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [{ faults: [{ errno: 'EIO', count: 0 }] }, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [5, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [nullEngine, name, code] of bad) {
      let err: (Error & { code?: string }) | undefined;
      try {
        new Ring({ engine: 'null', nullEngine: nullEngine as NullEngineOptions });
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect({ input: nullEngine, name: err?.name, code: err?.code }).toEqual({ input: nullEngine, name, code });
    }
    expect(() => new Ring({ engine: 'io_uring', nullEngine: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('performs no I/O: reads leave the buffer untouched, writes leave the file untouched', async () => {
    const dev = await make().open(file);
    expect(ring!.engine).toBe('null');
    const buf = Buffer.alloc(2 * B, 0xee);
    expect(await dev.read(buf, 0)).toBe(2 * B);
    expect(buf.every((x) => x === 0xee)).toBe(true);
    expect(await dev.write(Buffer.alloc(B, 0x77), 0, { fua: true })).toBe(B);
    expect(await dev.writeZeroes(B, B)).toBe(B);
    expect(await dev.discard(2 * B, B)).toBe(B);
    await dev.flush({ tag: 'ordered', metadata: true });
    expect(fs.readFileSync(file).every((x) => x === 0x11)).toBe(true);
  });

  it('fails only the attempts matching op, offset range and count', async () => {
    const dev = await make({
      faults: [
        { op: 'read', offsetStart: 4 * B, offsetEnd: 6 * B, count: 2, errno: 'ENODATA' },
        { op: 'discard', errno: 28 },
      ],
    }).open(file);
    const buf = Buffer.alloc(B);
    const outcome = (p: Promise<number>): Promise<string> => p.then((n) => `ok ${n}`, (e: { code: string }) => e.code);
    // Sequential, so the fault counts are spent in a known order.
    expect(await outcome(dev.read(buf, 3 * B))).toBe(`ok ${B}`); // ends where the range starts
    expect(await outcome(dev.write(buf, 4 * B))).toBe(`ok ${B}`); // wrong op
    expect(await outcome(dev.read(Buffer.alloc(2 * B), 3 * B))).toBe('ENODATA'); // overlaps
    expect(await outcome(dev.read(buf, 5 * B))).toBe('ENODATA');
    expect(await outcome(dev.read(buf, 5 * B))).toBe(`ok ${B}`); // count spent
    expect(await outcome(dev.discard(0, B))).toBe('ENOSPC');
    expect(await outcome(dev.discard(9 * B, B))).toBe('ENOSPC'); // no count: every time
    expect(await outcome(dev.writeZeroes(0, B))).toBe(`ok ${B}`);
  });

  it('EAGAIN faults are retried by the engine like a real EAGAIN', async () => {
    const dev = await make({ faults: [{ op: 'write', count: 3, errno: 'EAGAIN' }] }).open(file);
    expect(await dev.write(Buffer.alloc(B), 0)).toBe(B);
  });

  it('random latencies reorder completions', async () => {
    const dev = await make({ latencyUs: [0, 5000], seed: 42 }, 512).open(file);
    const buf = Buffer.alloc(512);
    const res = await ring!.submit(Array.from({ length: 400 }, (_, i) => ({ op: 'read' as const, dev, buffer: buf, offset: i * 512 })));
    const byIssue = [...res].sort((a, b) => a.issued! - b.issued!);
    let inversions = 0;
    for (let i = 1; i < byIssue.length; i++) if (byIssue[i]!.completed! < byIssue[i - 1]!.completed!) inversions++;
    expect(inversions).toBeGreaterThan(0);
  });

  it('close waits for requests still in their latency', async () => {
    const dev = await make({ latencyUs: 20_000 }).open(file);
    const p = Promise.all(Array.from({ length: 32 }, (_, i) => dev.read(Buffer.alloc(B), i * B)));
    const closing = ring!.close();
    expect(await p).toEqual(new Array(32).fill(B));
    await closing;
    ring = undefined;
  });

  it('more requests than the depth wait for room', async () => {
    const dev = await make({ latencyUs: [0, 100] }, 4).open(file);
    expect(ring!.depth).toBe(4);
    const res = await ring!.submit(Array.from({ length: 1000 }, (_, i) => ({ op: 'write' as const, dev, buffer: Buffer.alloc(B), offset: (i % 16) * B })));
    expect(res.every((r) => r.bytes === B && !r.error)).toBe(true);
  });

  it('cleans up', () => t.cleanup());
});
