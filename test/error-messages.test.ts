// Errors say what is wrong and where: an fs-style call names the right
// signature; a misaligned O_DIRECT request names the condition that failed,
// with its value, and points to allocAligned; batch errors name requests[i];
// rejections carry the caller's stack.
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { allocAligned, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let dir: string;
let ring: Ring;
let dev: BlockDevice;
withDevice({ ring: { depth: 8 }, open: { size: 1 << 20, direct: true }, name: 'img', scope: 'all' }, (f) => {
  ({ dir, ring, dev } = f);
});

const rejection = (p: Promise<unknown>): Promise<Error & { code?: string }> =>
  p.then(() => { throw new Error('resolved'); }, (e: Error & { code?: string }) => e);

describe('node:fs-style calls', () => {
  it('dev.read(buf, 0, 4096, 8192) names the signature and the call to write instead', async () => {
    const buf = allocAligned(8192, dev);
    // As a JavaScript caller would write it (TypeScript refuses the call).
    const fsStyleRead = dev.read.bind(dev) as unknown as (...args: unknown[]) => Promise<number>;
    const e = await rejection(fsStyleRead(buf, 0, 4096, 8192));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(e.message).toContain('dev.read(buffer, offset, options?)');
    expect(e.message).toContain('dev.read(buffer.subarray(0, 4096), 8192)');
    const w = await rejection(dev.write(buf, 512, 4096 as never));
    expect(w.message).toContain('dev.write(buffer.subarray(512, 4608), position)');
  });
});

describe('misaligned O_DIRECT requests', () => {
  it('name the failed condition with its value and point to allocAligned', async () => {
    const a = dev.offsetAlignment;
    const good = allocAligned(4 * a, dev);
    const offset = await rejection(dev.read(good, a + 1));
    expect(offset.code).toBe('ERR_MISALIGNED');
    expect(offset.message).toBe(`O_DIRECT: offset ${a + 1} is not a multiple of ${a} (dev.offsetAlignment)`);
    const length = await rejection(dev.read(good.subarray(0, a + 3), 0));
    expect(length.message).toMatch(new RegExp(`^O_DIRECT: length ${a + 3} is not a multiple of ${a} \\(dev\\.offsetAlignment\\); allocate buffers with allocAligned`));
    const vec = await rejection(dev.writev([good.subarray(0, a), good.subarray(a, 2 * a + 100)], 0));
    expect(vec.message).toMatch(new RegExp(`^O_DIRECT: buffers\\[1\\] length ${a + 100} is not a multiple of ${a}`));
    if (dev.memoryAlignment > 1) {
      const shifted = good.subarray(1, a + 1);
      const addr = await rejection(dev.read(shifted, 0));
      expect(addr.message).toMatch(new RegExp(`^O_DIRECT: buffer address 0x[0-9a-f]+ is not a multiple of ${dev.memoryAlignment} \\(dev\\.memoryAlignment\\); allocate buffers with allocAligned\\(size, dev\\)$`));
    }
  });
});

describe('batches', () => {
  it('a refusal names requests[i], from JS checks and from native ones', async () => {
    const a = dev.offsetAlignment;
    const buf = allocAligned(a, dev);
    const js = await rejection(ring.submit([{ op: 'read', dev, buffer: buf, offset: 0 }, { op: 'read', dev, buffer: buf, offset: -1 }]));
    expect(js.message).toMatch(/^requests\[1\]\.offset must be/);
    const native = await rejection(ring.submit([
      { op: 'read', dev, buffer: buf, offset: 0 }, { op: 'read', dev, buffer: buf, offset: a },
      { op: 'write', dev, buffer: buf, offset: 3 },
    ]));
    expect(native.code).toBe('ERR_MISALIGNED');
    expect(native.message).toBe(`requests[2]: O_DIRECT: offset 3 is not a multiple of ${a} (dev.offsetAlignment)`);
  });
});

describe('stack traces', () => {
  it('a refusal made at submission reaches the caller', async () => {
    async function callerOfMisalignedRead(): Promise<number> {
      return await dev.read(allocAligned(dev.offsetAlignment, dev), 1);
    }
    const e = await rejection(callerOfMisalignedRead());
    expect(e.stack).toContain('callerOfMisalignedRead');
  });

  it('an I/O error made at completion reaches the caller', async () => {
    const nr = new Ring({ engine: 'null', nullEngine: { faults: [{ op: 'write', errno: 'EIO' }] } });
    const d = await nr.open(path.join(dir, 'null.img'), { create: true, size: 1 << 16 });
    async function callerOfFailingWrite(): Promise<number> {
      return await d.write(Buffer.alloc(512), 0);
    }
    const e = await rejection(callerOfFailingWrite());
    expect(e.code).toBe('EIO');
    expect(e.stack).toContain('callerOfFailingWrite');
    await nr.close();
  });

  it('so does one from readv, flush and discard (every Promise call on a device)', async () => {
    const nr = new Ring({ engine: 'null', nullEngine: { faults: [{ errno: 'EIO' }] } });
    const d = await nr.open(path.join(dir, 'null2.img'), { create: true, size: 1 << 16 });
    async function callerOfFailingReadv(): Promise<number> {
      return await d.readv([Buffer.alloc(512), Buffer.alloc(512)], 0);
    }
    async function callerOfFailingFlush(): Promise<void> {
      await d.flush();
    }
    async function callerOfFailingDiscard(): Promise<number> {
      return await d.discard(0, 4096);
    }
    for (const [call, name] of [[callerOfFailingReadv, 'callerOfFailingReadv'], [callerOfFailingFlush, 'callerOfFailingFlush'],
      [callerOfFailingDiscard, 'callerOfFailingDiscard']] as const) {
      const e = await rejection(call());
      expect(e.code).toBe('EIO');
      expect(e.stack).toContain(name);
    }
    await nr.close();
  });
});
