// Views over a SharedArrayBuffer are ordinary memory (node:fs takes them),
// and one refused call never fails the other calls issued in its tick.
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

describe.each(['io_uring', 'libaio', 'threads', 'mmap'] as const)('%s', (engine) => {
  it('reads and writes through SharedArrayBuffer views, single, vectored, batched and raw', async () => {
    const file = path.join(t.dir, `${engine}.img`);
    const ring = new Ring({ engine });
    const dev = await ring.open(file, { create: true, size: 1 << 20 });
    const sab = new SharedArrayBuffer(16384);
    const u8 = new Uint8Array(sab, 0, 4096).fill(0xa1);
    expect(await dev.write(u8, 0)).toBe(4096);
    expect(await dev.writev([new Uint8Array(sab, 4096, 4096).fill(0xa2), new DataView(sab, 8192, 4096)], 4096)).toBe(8192);
    const back = new Uint8Array(new SharedArrayBuffer(4096));
    expect(await dev.read(back, 0)).toBe(4096);
    expect(back.every((b) => b === 0xa1)).toBe(true);
    const [r] = await ring.submit([{ op: 'read', dev, buffer: new Float64Array(new SharedArrayBuffer(4096)), offset: 4096 }]);
    expect(r!.bytes).toBe(4096);
    ring.raw.registerBuffers([new Uint8Array(sab)]);
    const done = new Promise<number>((resolve) => {
      ring.raw.onComplete = (cq) => resolve(cq[1]!);
    });
    ring.raw.prepare(0, 7, OP.read, dev, 0, 12288, 4096, 0);
    ring.raw.submit(1);
    expect(await done).toBe(4096);
    expect(new Uint8Array(sab, 12288, 4096).every((b) => b === 0xa1)).toBe(true);
    await ring.close();
  });

  it('a refused request leaves the other requests of its tick alone', async () => {
    const file = path.join(t.dir, `${engine}-tick.img`);
    fs.writeFileSync(file, Buffer.alloc(65536));
    const ring = new Ring({ engine });
    const dev = await ring.open(file);
    const a = dev.write(Buffer.alloc(4096, 1), 0);
    const b = dev.write(new Uint8Array(new SharedArrayBuffer(4096)).fill(2), 4096);
    const bad = dev.write(Buffer.alloc(4096), 65536 - 100); // past the end: refused natively
    const arr = [Buffer.alloc(512), Buffer.alloc(512)];
    const c = dev.readv(arr, 0);
    arr.length = 0; // the caller reuses its array at once
    (arr as unknown[]).push('not a buffer');
    const results = await Promise.allSettled([a, b, bad, c]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect((results[3] as PromiseFulfilledResult<number>).value).toBe(1024);
    await ring.close();
  });
});
