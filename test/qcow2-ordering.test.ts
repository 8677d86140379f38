// Task tags on a qcow2 device follow the same rules as on raw (README
// "Ordering"): an ORDERED request waits for every older one and holds back
// every newer SIMPLE one; HEAD OF QUEUE does not wait. Observed through
// completion order and content, single and batched.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { createImage, Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it('ORDERED waits for older requests and holds back newer SIMPLE ones; HEAD does not wait', async () => {
  const img = path.join(t.dir, 'o.qcow2');
  await createImage(img, { format: 'qcow2', size: 64 << 20 });
  const ring = new Ring();
  const dev = await ring.open(img, { format: 'qcow2' });
  for (let round = 0; round < 20; round++) {
    const order: string[] = [];
    const track = (name: string, p: Promise<unknown>): Promise<unknown> => p.then(() => order.push(name));
    // Big SIMPLE writes into fresh clusters (slow: allocation), then an ORDERED
    // write, then a SIMPLE read of what it wrote, then a HEAD read.
    const jobs = [
      track('s1', dev.write(Buffer.alloc(4 << 20, 1), round * (3 << 20))),
      track('s2', dev.write(Buffer.alloc(2 << 20, 2), (round % 4) * (8 << 20) + (1 << 20))),
      track('ordered', dev.write(Buffer.alloc(512, 0x0d), 0, { tag: 'ordered' })),
    ];
    const after = Buffer.alloc(512);
    jobs.push(track('s3', dev.read(after, 0)));
    jobs.push(track('head', dev.read(Buffer.alloc(512), 60 << 20, { tag: 'head' })));
    await Promise.all(jobs);
    expect(order.indexOf('ordered')).toBeGreaterThan(order.indexOf('s1'));
    expect(order.indexOf('ordered')).toBeGreaterThan(order.indexOf('s2'));
    expect(order.indexOf('s3')).toBeGreaterThan(order.indexOf('ordered'));
    expect(after.every((x) => x === 0x0d)).toBe(true);
    expect(order.indexOf('head')).toBeLessThan(order.indexOf('ordered'));
    await dev.write(Buffer.alloc(512), 0);
  }
  // In a batch: array order is age.
  const buf = Buffer.alloc(512);
  const res = await ring.submit([
    { op: 'write', dev, buffer: Buffer.alloc(1 << 20, 7), offset: 0 },
    { op: 'flush', dev, tag: 'ordered' },
    { op: 'read', dev, buffer: buf, offset: 0 },
  ]);
  expect(res.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
  expect(buf.every((x) => x === 7)).toBe(true);
  await ring.close();
});

