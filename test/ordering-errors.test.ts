// A failed request counts as completed: it never blocks the queue, and its
// error is reported on it. Failures injected with the null engine.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { BlockIoError, Ring, type BlockDevice, type NullFault, type RequestResult } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

const B = 4096;

describe('failed tagged requests release the queue (null engine)', () => {
  const t = tempDir();
  let ring: Ring | undefined;
  afterEach(async () => {
    await ring?.close();
    ring = undefined;
  });

  async function open(faults: NullFault[], latencyUs: number | [number, number] = [0, 300]): Promise<BlockDevice> {
    ring = new Ring({ engine: 'null', trace: true, nullEngine: { latencyUs, seed: 5, faults } });
    return ring.open(path.join(t.dir, 'disk'), { create: true, size: 1 << 20 });
  }

  it('a failed ORDERED write releases the requests behind it, with its error on it', async () => {
    const dev = await open([{ op: 'write', offsetStart: 8 * B, offsetEnd: 9 * B, errno: 'EIO' }]);
    const buf = Buffer.alloc(B);
    const res = await ring!.submit([
      { op: 'write', dev, buffer: buf, offset: 0 },
      { op: 'write', dev, buffer: buf, offset: B },
      { op: 'write', dev, buffer: buf, offset: 8 * B, tag: 'ordered' },
      { op: 'write', dev, buffer: buf, offset: 2 * B },
      { op: 'read', dev, buffer: buf, offset: 3 * B },
      { op: 'flush', dev, tag: 'ordered' },
    ]);
    const [a, b, bad, c, d, f] = res as [typeof res[0], typeof res[0], typeof res[0], typeof res[0], typeof res[0], typeof res[0]];
    expect(bad.error).toBeInstanceOf(BlockIoError);
    expect(bad.error).toMatchObject({ code: 'EIO', errno: -5, op: 'write', offset: 8 * B, length: B });
    expect(bad.bytes).toBe(0);
    for (const r of [a, b, c, d]) expect([r.bytes, r.error]).toEqual([B, undefined]);
    expect(f.error).toBeUndefined();
    // The ORDERED waited for both older writes; the newer ones waited for it.
    expect(bad.issued!).toBeGreaterThan(Math.max(a.completed!, b.completed!));
    expect(c.issued!).toBeGreaterThan(bad.completed!);
    expect(d.issued!).toBeGreaterThan(bad.completed!);
    expect(f.issued!).toBeGreaterThan(Math.max(c.completed!, d.completed!));
  });

  it('a failed ORDERED flush is a barrier that still releases the queue', async () => {
    const dev = await open([{ op: 'flush', errno: 'ENOSPC', count: 1 }]);
    const buf = Buffer.alloc(B);
    const [w1, fl, w2, fl2] = (await ring!.submit([
      { op: 'write', dev, buffer: buf, offset: 0 },
      { op: 'flush', dev, tag: 'ordered' },
      { op: 'write', dev, buffer: buf, offset: 0, tag: 'ordered', fua: true },
      { op: 'flush', dev, tag: 'ordered' },
    ])) as [RequestResult, RequestResult, RequestResult, RequestResult];
    // The null engine makes no system call: its injected faults say so.
    expect(fl!.error).toMatchObject({ code: 'ENOSPC', syscall: 'none', op: 'flush' });
    expect(w1.error).toBeUndefined();
    expect(w2!.error).toBeUndefined();
    expect(fl2!.error).toBeUndefined(); // count: 1 spent the fault
    expect(w2!.issued!).toBeGreaterThan(fl!.completed!);
  });

  it('a failed HEAD OF QUEUE releases the SIMPLE requests behind it', async () => {
    const dev = await open([{ op: 'read', errno: 'EBADMSG' }]);
    const buf = Buffer.alloc(B);
    const res = await ring!.submit([
      { op: 'write', dev, buffer: buf, offset: 0, tag: 'ordered' },
      { op: 'read', dev, buffer: buf, offset: 0, tag: 'head' },
      { op: 'write', dev, buffer: buf, offset: B },
    ]);
    expect(res[1]!.error).toMatchObject({ code: 'EBADMSG', op: 'read' });
    expect(res[1]!.issued!).toBeLessThan(res[0]!.completed!); // bypassed the pending ORDERED
    expect(res[2]!.error).toBeUndefined();
    expect(res[2]!.issued!).toBeGreaterThan(Math.max(res[0]!.completed!, res[1]!.completed!));
  });

  it('per-request API: a rejected ORDERED write does not stall the requests after it', async () => {
    const dev = await open([{ op: 'write', offsetStart: 0, offsetEnd: 1, errno: 'EIO' }], 200);
    const buf = Buffer.alloc(B);
    const failed = dev.write(buf, 0, { tag: 'ordered' });
    const after = [dev.write(buf, B), dev.write(buf, 2 * B, { tag: 'ordered' }), dev.read(buf, 3 * B)];
    await expect(failed).rejects.toMatchObject({ name: 'BlockIoError', code: 'EIO', syscall: 'none' });
    expect(await Promise.all(after)).toEqual([B, B, B]);
  });

  it('random failures among 4,000 tagged requests never stall a device', async () => {
    const dev = await open([{ offsetStart: 0, offsetEnd: 64 * B, errno: 'EIO' }], [0, 200]);
    const buf = Buffer.alloc(B);
    const tags = ['simple', 'simple', 'ordered', 'head'] as const;
    const reqs = Array.from({ length: 4000 }, (_, i) => ({
      op: 'write' as const, dev, buffer: buf, offset: ((i * 7919) % 256) * B, tag: tags[(i * 31) % 4]!,
    }));
    const res = await ring!.submit(reqs);
    let failed = 0;
    res.forEach((r, i) => {
      const inFaultRange = reqs[i]!.offset < 64 * B;
      expect(r.error?.code).toBe(inFaultRange ? 'EIO' : undefined);
      if (r.error) failed++;
    });
    expect(failed).toBeGreaterThan(500);
  });

  it('cleans up', () => t.cleanup());
});
