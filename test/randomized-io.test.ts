// 10,000 reads and writes of random sizes (1 B to 1 MiB, log-uniform) at
// random offsets, mixed single and batched, checked byte for byte against
// node:fs on a shadow copy.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Ring, type BatchRequest, type BlockDevice } from '../dist/lib/index.js';
import { rng, tempDir } from './helpers/tmp';

const SPAN = 64 << 20;
const OPS = 10_000;
let t: ReturnType<typeof tempDir>;

beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

interface Op {
  write: boolean;
  offset: number;
  size: number;
}

it('matches node:fs on a shadow copy over 10,000 random requests', async () => {
  const seed = Number(process.env.BLOCKRING_SEED ?? 0x5eed);
  const rand = rng(seed);
  const file = path.join(t.dir, 'img');
  const shadowPath = path.join(t.dir, 'shadow');
  fs.writeFileSync(shadowPath, '');
  fs.truncateSync(shadowPath, SPAN);
  const shadow = fs.openSync(shadowPath, 'r+');
  const ring = new Ring({ depth: 64 });
  const dev: BlockDevice = await ring.open(file, { create: true, size: SPAN });
  const next = (): Op => {
    const size = Math.max(1, Math.floor(Math.exp(rand() * Math.log(1 << 20))));
    const write = rand() < 0.5;
    // Writes stay inside the preallocated span so the file size is stable
    // while a batch runs; reads may cross the end of file (short reads).
    return { write, offset: Math.floor(rand() * (SPAN - size + (write ? 0 : 1 << 20))), size };
  };
  // Content from the seeded PRNG, 32 bits at a time, so failures reproduce.
  const fill = (buf: Buffer): void => {
    let i = 0;
    for (; i + 4 <= buf.length; i += 4) buf.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
    for (; i < buf.length; i++) buf[i] = (rand() * 256) | 0;
  };
  const check = (op: Op, buf: Buffer, got: number): void => {
    const want = Buffer.alloc(op.size);
    const n = fs.readSync(shadow, want, 0, op.size, op.offset);
    expect({ offset: op.offset, size: op.size, got }).toEqual({ offset: op.offset, size: op.size, got: n });
    if (!buf.subarray(0, n).equals(want.subarray(0, n))) {
      throw new Error(`content mismatch at offset ${op.offset} size ${op.size} (seed ${seed})`);
    }
  };

  let done = 0;
  let batches = 0;
  while (done < OPS) {
    if (rand() < 0.5) {
      // Single request through the per-device Promise API.
      const op = next();
      const buf = Buffer.allocUnsafe(op.size);
      if (op.write) {
        fill(buf);
        expect(await dev.write(buf, op.offset)).toBe(op.size);
        fs.writeSync(shadow, buf, 0, op.size, op.offset);
      } else {
        check(op, buf, await dev.read(buf, op.offset));
      }
      done++;
      continue;
    }
    // A batch of non-overlapping requests submitted together.
    const ops: Op[] = [];
    const want = 1 + Math.floor(rand() * 64);
    while (ops.length < want && done + ops.length < OPS) {
      const op = next();
      if (ops.some((o) => o.offset < op.offset + op.size && op.offset < o.offset + o.size)) break;
      ops.push(op);
    }
    const bufs = ops.map((op) => {
      const b = Buffer.allocUnsafe(op.size);
      if (op.write) fill(b);
      return b;
    });
    const reqs: BatchRequest[] = ops.map((op, i) => ({ op: op.write ? 'write' : 'read', dev, buffer: bufs[i]!, offset: op.offset }));
    const results = await ring.submit(reqs);
    batches++;
    ops.forEach((op, i) => {
      const r = results[i]!;
      expect(r.error).toBeUndefined();
      if (op.write) {
        expect(r.bytes).toBe(op.size);
        fs.writeSync(shadow, bufs[i]!, 0, op.size, op.offset);
      } else {
        check(op, bufs[i]!, r.bytes);
      }
    });
    done += ops.length;
  }
  expect(batches).toBeGreaterThan(10);
  // Whole-image comparison at the end.
  await ring.close();
  const a = fs.readFileSync(file);
  const b = fs.readFileSync(shadowPath);
  expect(a.length).toBe(b.length);
  expect(a.equals(b)).toBe(true);
  fs.closeSync(shadow);
});
