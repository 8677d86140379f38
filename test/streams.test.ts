// dev.createReadStream / dev.createWriteStream: the bytes of [start, end]
// exactly, buffered and O_DIRECT (unaligned start, unaligned file end: the
// partial blocks at both ends), many requests in flight, backpressure.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';

import { type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

// Odd-sized chunks, as a decompressor or socket hands them over.
function source(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(data.length - at, [1, 4095, 65537, 333_333, 7][i % 5]!);
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(chunks);
}

for (const direct of [false, true]) {
  describe(direct ? 'O_DIRECT' : 'buffered', () => {
    const size = (4 << 20) + 1000; // not a multiple of any block size
    let file: string;
    let dev: BlockDevice;
    const prepare = (f: string) => fs.writeFileSync(f, Buffer.alloc(size, 0xee));
    withDevice({ ring: { depth: 64 }, name: 'img', prepare, open: { direct } }, (f) => {
      ({ file, dev } = f);
    });

    it('a write stream from an unaligned start to the unaligned end of the file, then read back', async () => {
      const start = 777;
      const data = crypto.randomBytes(size - start);
      await pipeline(source(data), dev.createWriteStream({ start, highWaterMark: 256 << 10 }));
      const disk = fs.readFileSync(file);
      expect(disk.length).toBe(size);
      expect(disk.subarray(0, start).equals(Buffer.alloc(start, 0xee))).toBe(true); // the head block kept its bytes
      expect(disk.subarray(start).equals(data)).toBe(true);
      const back = await collect(dev.createReadStream({ start, end: size - 1, highWaterMark: 100_000 }));
      expect(back.equals(data)).toBe(true);
    });

    it('a read stream of an inner range with unaligned ends, and of the whole device', async () => {
      const data = crypto.randomBytes(size);
      fs.writeFileSync(file, data);
      const [s, e] = [4097, 3_000_001];
      expect((await collect(dev.createReadStream({ start: s, end: e, highWaterMark: 64 << 10 }))).equals(data.subarray(s, e + 1))).toBe(true);
      expect((await collect(dev.createReadStream())).equals(data)).toBe(true);
    });

    it('a write inside the file merges the partial last block with what is there', async () => {
      const data = Buffer.alloc(10_000, 0x11);
      await pipeline(Readable.from([data]), dev.createWriteStream({ start: 5000 }));
      const disk = fs.readFileSync(file);
      expect(disk.subarray(5000, 15_000).equals(data)).toBe(true);
      expect(disk.subarray(0, 5000).every((b) => b === 0xee)).toBe(true);
      expect(disk.subarray(15_000, 20_000).every((b) => b === 0xee)).toBe(true);
    });
  });
}

describe('flow control (null engine, 20 ms per request)', () => {
  let dev: BlockDevice;
  withDevice({ ring: { engine: 'null', nullEngine: { latencyUs: 20_000 } }, name: 'null.img', open: { size: 1 << 20 } }, (f) => {
    ({ dev } = f);
  });

  it('keeps `depth` reads in flight', async () => {
    const started = Date.now();
    const got = await collect(dev.createReadStream({ highWaterMark: 16 << 10, depth: 16 })); // 64 reads
    expect(got.length).toBe(1 << 20);
    // One at a time would take 64 × 20 ms; 16 in flight about 4 × 20 ms.
    expect(Date.now() - started).toBeLessThan(640);
  });

  it('stops reading while the consumer does not read (backpressure)', async () => {
    let reads = 0;
    const read = dev.read.bind(dev);
    (dev as { read: BlockDevice['read'] }).read = (...a: Parameters<BlockDevice['read']>) => {
      reads++;
      return read(...a);
    };
    const r = dev.createReadStream({ highWaterMark: 4096, depth: 4 }); // 256 chunks
    r.on('readable', () => undefined); // start flowing into the buffer, never read()
    await new Promise((res) => setTimeout(res, 300));
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(12);
    r.destroy();
  });

  it('keeps `depth` writes in flight and pushes back on the writer', async () => {
    const started = Date.now();
    let writes = 0;
    const write = dev.write.bind(dev);
    (dev as { write: BlockDevice['write'] }).write = (...a: Parameters<BlockDevice['write']>) => {
      writes++;
      return write(...a);
    };
    const w: Writable = dev.createWriteStream({ highWaterMark: 16 << 10, depth: 16 });
    await pipeline(Readable.from([Buffer.alloc(1 << 20)]), w);
    expect(writes).toBe(64);
    expect(Date.now() - started).toBeLessThan(640);
  });
});
