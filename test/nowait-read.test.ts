// The io_uring engine's nowait-read: a submission that is one buffered read
// tries preadv2(RWF_NOWAIT) instead of the ring, so a page-cache hit costs
// one syscall and no SQE; a miss goes to the ring as staged, and the device
// then skips the try for a while. Observed in the kernel's own counter: the
// SqHead of the ring's /proc/self/fdinfo entry, which only SQEs the kernel
// consumed advance. (conformance.test.ts runs every check with the feature
// on, the default, and off, BLOCKRING_IO_URING=none.)
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { allocAligned, type BlockDevice, Ring } from '../dist/lib/index.js';
import { skipUnless, tempDir } from './helpers/tmp';

const BS = 4096;
const BLOCKS = 64;
const TMPFS_MAGIC = 0x01021994;

const t = tempDir();
const file = path.join(t.dir, 'disk.img');
const pattern = (i: number): Buffer => Buffer.alloc(BS, (i * 7 + 1) & 0xff);
beforeAll(() => {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.concat(Array.from({ length: BLOCKS }, (_, i) => pattern(i))));
  // On disk before any test: no writeback of these pages overlaps the miss
  // test's O_DIRECT write, which has to drop block 5 from the page cache.
  fs.fsyncSync(fd);
  fs.closeSync(fd);
});
// The page cache can be dropped under the suite (the host's reclaim runs
// drop_caches): the tests that need hits read the file into it first.
const warm = (): void => void fs.readFileSync(file);
afterAll(() => t.cleanup());
const saved = process.env.BLOCKRING_IO_URING;
afterEach(() => {
  if (saved === undefined) delete process.env.BLOCKRING_IO_URING;
  else process.env.BLOCKRING_IO_URING = saved;
});

function uringFds(): Set<string> {
  const out = new Set<string>();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[io_uring]') out.add(fd);
    } catch {
      // closed between readdir and readlink (readdir's own fd)
    }
  }
  return out;
}

// A ring and its fd, found as the io_uring fd its constructor added.
function newRing(features?: string): { ring: Ring; sqHead: () => number } {
  if (features === undefined) delete process.env.BLOCKRING_IO_URING;
  else process.env.BLOCKRING_IO_URING = features;
  const before = uringFds();
  const ring = new Ring({ engine: 'io_uring', depth: 64 });
  const fresh = [...uringFds()].filter((fd) => !before.has(fd));
  expect(fresh).toHaveLength(1);
  const fd = fresh[0]!;
  const sqHead = (): number => {
    const m = /^SqHead:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (!m) throw new Error(`no SqHead in /proc/self/fdinfo/${fd}`);
    return Number(m[1]);
  };
  return { ring, sqHead };
}

// Reads every block once, one request at a time; checks the data.
async function readEach(dev: BlockDevice): Promise<void> {
  const buf = allocAligned(BS);
  for (let i = 0; i < BLOCKS; i++) {
    expect(await dev.read(buf, i * BS)).toBe(BS);
    expect(Buffer.from(buf.buffer, buf.byteOffset, BS).equals(pattern(i))).toBe(true);
  }
}

describe('nowait-read', () => {
  it('is a feature engineInfo names, on by default', async () => {
    const { ring } = newRing();
    expect(ring.engineInfo.features).toContain('nowait-read');
    await ring.close();
    const off = newRing('single-issuer,ring-fd');
    expect(off.ring.engineInfo.features).not.toContain('nowait-read');
    await off.ring.close();
  });

  it('lone reads of cached data never reach the ring, and read the right bytes', async () => {
    const { ring, sqHead } = newRing();
    const dev = await ring.open(file);
    warm();
    const h0 = sqHead();
    await readEach(dev);
    expect(sqHead() - h0).toBe(0);
    await ring.close();
  });

  it('with the feature off, every lone read is an SQE', async () => {
    const { ring, sqHead } = newRing('single-issuer,defer-taskrun,no-sqarray,ring-fd');
    const dev = await ring.open(file);
    const h0 = sqHead();
    await readEach(dev);
    expect(sqHead() - h0).toBe(BLOCKS);
    await ring.close();
  });

  it('a batch goes to the ring whole, and O_DIRECT reads always do', async () => {
    const { ring, sqHead } = newRing();
    const dev = await ring.open(file);
    const bufs = Array.from({ length: 8 }, () => allocAligned(BS));
    let h = sqHead();
    const results = await ring.submit(bufs.map((buffer, i) => ({ op: 'read' as const, dev, buffer, offset: i * BS })));
    expect(results.map((r) => r.bytes)).toEqual(bufs.map(() => BS));
    bufs.forEach((b, i) => expect(Buffer.from(b.buffer, b.byteOffset, BS).equals(pattern(i))).toBe(true));
    expect(sqHead() - h).toBe(8);
    const direct = await ring.open(file, { direct: true });
    h = sqHead();
    await readEach(direct);
    expect(sqHead() - h).toBe(BLOCKS);
    await ring.close();
  });

  it('a read past the end finishes without the ring, short', async () => {
    const { ring, sqHead } = newRing();
    const dev = await ring.open(file);
    warm();
    const h0 = sqHead();
    const buf = Buffer.alloc(2 * BS, 0xee);
    expect(await dev.read(buf, (BLOCKS - 1) * BS)).toBe(BS);
    expect(buf.subarray(0, BS).equals(pattern(BLOCKS - 1))).toBe(true);
    expect(await dev.read(buf, BLOCKS * BS)).toBe(0);
    expect(sqHead() - h0).toBe(0);
    await ring.close();
  });

  it('a miss goes to the ring, then the device skips the try once before trying again', async () => {
    if (skipUnless(fs.statfsSync(t.dir).type !== TMPFS_MAGIC, 'the temp dir is tmpfs: its pages are never uncached')) return;
    const { ring, sqHead } = newRing();
    const dev = await ring.open(file);
    // An O_DIRECT write drops the cached pages of its range: the next
    // buffered read of it has to wait for the disk.
    const direct = await ring.open(file, { direct: true });
    const block = allocAligned(BS);
    Buffer.from(block.buffer, block.byteOffset, BS).set(pattern(5));
    const buf = Buffer.alloc(BS);
    let deltas: number[] = [];
    // The kernel may still keep the page (the write then went through the
    // page cache): such an attempt tests nothing (three hits, which also
    // leave the device's backoff reset), so the write is made again.
    for (let attempt = 0; attempt < 5 && deltas.every((d) => d === 0); attempt++) {
      expect(await direct.write(block, 5 * BS)).toBe(BS);
      deltas = [];
      for (let k = 0; k < 3; k++) {
        const h = sqHead();
        buf.fill(0);
        expect(await dev.read(buf, 5 * BS)).toBe(BS);
        expect(buf.equals(pattern(5))).toBe(true);
        deltas.push(sqHead() - h);
      }
    }
    // Missed (to the ring); skipped (to the ring, though now cached); hit.
    expect(deltas, 'five O_DIRECT writes left the block cached every time').toEqual([1, 1, 0]);
    await ring.close();
  });

  it('a FIFO (no offsets) is read through the ring, never lost', async () => {
    const fifo = path.join(t.dir, 'fifo');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [fifo]);
    const { ring } = newRing();
    const dev = await ring.open(fifo);
    const w = fs.openSync(fifo, 'r+');
    try {
      for (let k = 0; k < 4; k++) {
        fs.writeSync(w, Buffer.alloc(100, k + 1));
        const buf = Buffer.alloc(100);
        expect(await dev.read(buf, 0)).toBe(100);
        expect(buf.equals(Buffer.alloc(100, k + 1))).toBe(true);
      }
    } finally {
      fs.closeSync(w);
      await ring.close();
    }
  });
});
