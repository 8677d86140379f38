// More requests than the submission queue holds wait in userspace: the
// user never sees EBUSY/EAGAIN, and completions arrive in batches.
import { expect, it } from 'vitest';

import { Ring, OP, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let ring: Ring;
let dev: BlockDevice;
withDevice({ ring: { depth: 64 }, open: { size: 10_000 * 512 }, name: 'img' }, (f) => {
  ({ ring, dev } = f);
});

it('runs a batch of 10,000 requests on a depth-64 ring', async () => {
  const writes = Array.from({ length: 10_000 }, (_, i) => {
    const b = Buffer.alloc(512);
    b.writeUInt32LE(i, 0);
    return { op: 'write' as const, dev, buffer: b, offset: i * 512 };
  });
  const wr = await ring.submit(writes);
  expect(wr.every((r) => r.bytes === 512 && !r.error)).toBe(true);
  const bufs = Array.from({ length: 10_000 }, () => Buffer.alloc(512));
  const rr = await ring.submit(bufs.map((buffer, i) => ({ op: 'read' as const, dev, buffer, offset: i * 512 })));
  expect(rr.every((r) => r.bytes === 512)).toBe(true);
  bufs.forEach((b, i) => expect(b.readUInt32LE(0)).toBe(i));
});

it('runs 10,000 concurrent single-request promises', async () => {
  const all = await Promise.all(Array.from({ length: 10_000 }, (_, i) => dev.write(Buffer.alloc(512, i & 255), i * 512)));
  expect(all.every((n) => n === 512)).toBe(true);
});

it('delivers many completions per callback through the raw interface', async () => {
  const raw = ring.raw;
  const bufs = Array.from({ length: 256 }, () => Buffer.alloc(512));
  raw.registerBuffers(bufs);
  const counts: number[] = [];
  const seen = new Set<number>();
  const done = new Promise<void>((resolve) => {
    raw.onComplete = (cq, count) => {
      counts.push(count);
      for (let i = 0; i < count; i++) {
        expect(cq[i * 4 + 1]).toBe(512);
        seen.add(cq[i * 4]!);
      }
      if (seen.size === 256) resolve();
    };
  });
  for (let i = 0; i < 256; i++) raw.prepare(i, 1000 + i, OP.read, dev, i, 0, 512, i * 512);
  raw.submit(256);
  await done;
  expect(counts.reduce((a, b) => a + b, 0)).toBe(256);
  expect(Math.max(...counts)).toBeGreaterThan(1);
  expect(counts.length).toBeLessThan(256);
});
