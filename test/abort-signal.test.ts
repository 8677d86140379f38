// `signal: AbortSignal` on every request and on ring.submit(): a request not
// yet handed to the engine is dropped; one already issued rejects at once
// with an AbortError and its completion is discarded when the kernel is done
// (close waits for it). Rejections are AbortErrors as Node's own APIs make.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

import { AbortError, createImage, type BlockDevice, type Qcow2Device, type Ring } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

const rejection = (p: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> =>
  p.then(() => { throw new Error('resolved'); }, (e: Error & { code?: string }) => e);

function isAbort(e: Error & { code?: string; cause?: unknown }, reason?: unknown): void {
  expect(e).toBeInstanceOf(AbortError);
  expect(e.name).toBe('AbortError');
  expect(e.code).toBe('ABORT_ERR');
  if (reason !== undefined) expect(e.cause).toBe(reason);
}

// Every device call with an already aborted signal rejects with it.
async function everyCallRejects(dev: BlockDevice | Qcow2Device, signal: AbortSignal, reason: unknown): Promise<void> {
  const b = Buffer.alloc(512, 7);
  for (const p of [dev.write(b, 0, { signal }), dev.writev([b], 512, { signal }), dev.read(b, 0, { signal }),
    dev.readv([b], 0, { signal }), dev.flush({ signal }), dev.discard(0, 512, { signal }),
    dev.writeZeroes(0, 512, { signal })]) {
    isAbort(await rejection(p), reason);
  }
}

// The raw-file and qcow2 describes below use a depth-8 ring and differ only in the device.
describe('on a real file', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let file: string;
  withDevice({ ring: { depth: 8 }, name: 'img', open: { size: 1 << 16 } }, (f) => {
    ({ ring, dev, file } = f);
  });

  it('an already aborted signal rejects every call and writes nothing', async () => {
    const reason = new Error('stop');
    const signal = AbortSignal.abort(reason);
    await everyCallRejects(dev, signal, reason);
    isAbort(await rejection(ring.submit([{ op: 'write', dev, buffer: Buffer.alloc(512, 7), offset: 1024 }], { signal })), reason);
    await dev.flush();
    expect(fs.readFileSync(file).equals(Buffer.alloc(1 << 16))).toBe(true);
  });

  it('aborting in the same tick drops the request before it is issued; its neighbours run', async () => {
    const c = new AbortController();
    const first = dev.write(Buffer.alloc(512, 1), 0);
    const dropped = dev.write(Buffer.alloc(512, 2), 512, { signal: c.signal });
    const last = dev.write(Buffer.alloc(512, 3), 1024);
    c.abort();
    isAbort(await rejection(dropped));
    expect(await first).toBe(512);
    expect(await last).toBe(512);
    const data = fs.readFileSync(file);
    expect(data.subarray(0, 512).equals(Buffer.alloc(512, 1))).toBe(true);
    expect(data.subarray(512, 1024).equals(Buffer.alloc(512))).toBe(true); // never written
    expect(data.subarray(1024, 1536).equals(Buffer.alloc(512, 3))).toBe(true);
    await dev.close(); // the dropped request is not waited for
  });

  it('a signal that is not an AbortSignal is a TypeError', async () => {
    const e = await rejection(dev.read(Buffer.alloc(512), 0, { signal: {} as AbortSignal }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('requests the engine already holds (null engine, 300 ms latency)', () => {
  let ring: Ring;
  let dev: BlockDevice;
  withDevice({ ring: { engine: 'null', nullEngine: { latencyUs: 300_000 } }, name: 'null.img', open: { size: 1 << 16 } }, (f) => {
    ({ ring, dev } = f);
  });

  it('reject at once; close() still waits for the engine to finish with the buffer', async () => {
    const c = new AbortController();
    const start = Date.now();
    const p = dev.read(Buffer.alloc(4096), 0, { signal: c.signal });
    await new Promise((r) => setImmediate(r)); // flushed: now in the engine
    c.abort();
    isAbort(await rejection(p));
    expect(Date.now() - start).toBeLessThan(250);
    await ring.close();
    expect(Date.now() - start).toBeGreaterThanOrEqual(290);
  });

  it('a request signal in a batch fails that request alone', async () => {
    const c = new AbortController();
    const batch = ring.submit([
      { op: 'write', dev, buffer: Buffer.alloc(512), offset: 0 },
      { op: 'write', dev, buffer: Buffer.alloc(512), offset: 512, signal: c.signal },
    ]);
    c.abort();
    const [a, b] = await batch;
    expect(a!.bytes).toBe(512);
    expect(a!.error).toBeUndefined();
    expect(b!.bytes).toBe(0);
    isAbort(b!.error as Error);
  });

  it('a submit() signal rejects the whole batch once aborted', async () => {
    const c = new AbortController();
    const start = Date.now();
    const batch = ring.submit([{ op: 'read', dev, buffer: Buffer.alloc(512), offset: 0 }], { signal: c.signal });
    setTimeout(() => c.abort('enough'), 20);
    isAbort(await rejection(batch), 'enough');
    expect(Date.now() - start).toBeLessThan(250);
  });
});

describe('on a qcow2 image (requests run in TypeScript above the file device)', () => {
  let ring: Ring;
  let dev: Qcow2Device;
  let img: string;
  const prepare = (f: string) => createImage(f, { format: 'qcow2', size: 4 << 20 });
  withDevice({ ring: { depth: 8 }, name: 'a.qcow2', prepare, open: { format: 'qcow2' } }, (f) => {
    ({ ring, dev, file: img } = f);
  });

  const readBack = async (offset: number, length: number): Promise<Buffer> => {
    const b = Buffer.alloc(length);
    await dev.read(b, offset);
    return b;
  };

  it('an already aborted signal rejects every call and writes nothing', async () => {
    const reason = new Error('stop');
    const signal = AbortSignal.abort(reason);
    await everyCallRejects(dev, signal, reason);
    const [r] = await ring.submit([{ op: 'write', dev, buffer: Buffer.alloc(512, 7), offset: 1024, signal }]);
    isAbort(r!.error as Error, reason);
    expect((await readBack(0, 2048)).equals(Buffer.alloc(2048))).toBe(true);
    expect(await dev.allocation(0, 4 << 20)).toEqual([{ offset: 0, length: 4 << 20, type: 'hole' }]); // nothing allocated
  });

  it('aborted while it waits behind an ORDERED request: dropped, never run', async () => {
    const c = new AbortController();
    const ordered = dev.write(Buffer.alloc(65536, 1), 0, { tag: 'ordered' });
    const dropped = dev.write(Buffer.alloc(512, 2), 1 << 20, { signal: c.signal });
    c.abort();
    isAbort(await rejection(dropped));
    expect(await ordered).toBe(65536);
    await dev.flush();
    expect((await readBack(1 << 20, 512)).equals(Buffer.alloc(512))).toBe(true);
  });

  it('aborted in the same tick: dropped before it reaches the engine, as on a raw device', async () => {
    const c = new AbortController();
    const p = dev.write(Buffer.alloc(512, 4), 3 << 20, { signal: c.signal });
    c.abort();
    isAbort(await rejection(p));
    await dev.flush();
    expect((await readBack(3 << 20, 512)).equals(Buffer.alloc(512))).toBe(true);
  });

  it('aborted once started: rejects at once, the request runs to its end and close() waits for it', async () => {
    const c = new AbortController();
    const data = Buffer.alloc(1 << 20, 3);
    const p = dev.write(data, 2 << 20, { signal: c.signal });
    // A microtask later the ring has submitted it: the engine parked it for
    // the format layer (its clusters need allocating), which runs it out.
    // Its parking reaches JavaScript only at the next wakeup.
    await Promise.resolve();
    await Promise.resolve();
    c.abort();
    isAbort(await rejection(p));
    await dev.close();
    const again = await ring.open(img, { format: 'qcow2' });
    const b = Buffer.alloc(1 << 20);
    await again.read(b, 2 << 20);
    expect(b.equals(data)).toBe(true);
  });

  it('a signal that is not an AbortSignal is a TypeError, in a batch too', async () => {
    const e = await rejection(dev.read(Buffer.alloc(512), 0, { signal: {} as AbortSignal }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
    await expect(ring.submit([{ op: 'read', dev, buffer: Buffer.alloc(512), offset: 0, signal: 1 as unknown as AbortSignal }]))
      .rejects.toThrow(/requests\[0\]\.signal must be an AbortSignal/);
  });
});
