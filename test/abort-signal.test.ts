// `signal: AbortSignal` on every request and on ring.submit(): a request not
// yet handed to the engine is dropped; one already issued rejects at once
// with an AbortError and its completion is discarded when the kernel is done
// (close waits for it). Rejections are AbortErrors as Node's own APIs make.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AbortError, Ring, type BlockDevice } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

const rejection = (p: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> =>
  p.then(() => { throw new Error('resolved'); }, (e: Error & { code?: string }) => e);

function isAbort(e: Error & { code?: string; cause?: unknown }, reason?: unknown): void {
  expect(e).toBeInstanceOf(AbortError);
  expect(e.name).toBe('AbortError');
  expect(e.code).toBe('ABORT_ERR');
  if (reason !== undefined) expect(e.cause).toBe(reason);
}

describe('on a real file', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let file: string;
  beforeEach(async () => {
    file = path.join(t.dir, 'img');
    ring = new Ring({ depth: 8 });
    dev = await ring.open(file, { create: true, size: 1 << 16 });
  });
  afterEach(() => ring.close());

  it('an already aborted signal rejects every call and writes nothing', async () => {
    const reason = new Error('stop');
    const signal = AbortSignal.abort(reason);
    const b = Buffer.alloc(512, 7);
    for (const p of [dev.write(b, 0, { signal }), dev.writev([b], 512, { signal }), dev.read(b, 0, { signal }),
      dev.readv([b], 0, { signal }), dev.flush({ signal }), dev.discard(0, 512, { signal }),
      dev.writeZeroes(0, 512, { signal }), ring.submit([{ op: 'write', dev, buffer: b, offset: 1024 }], { signal })]) {
      isAbort(await rejection(p), reason);
    }
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
  beforeEach(async () => {
    ring = new Ring({ engine: 'null', nullEngine: { latencyUs: 300_000 } });
    dev = await ring.open(path.join(t.dir, 'null.img'), { create: true, size: 1 << 16 });
  });
  afterEach(() => ring.close());

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
