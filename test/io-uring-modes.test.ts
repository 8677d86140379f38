// The io_uring setup features and the polling mode: $BLOCKRING_IO_URING
// picks the features a ring may use (engineInfo.features says which it got),
// pollMicros is checked before anything starts, and in polling mode a
// depth-1 O_DIRECT loop gets its completions inside the wakeup's bounded
// spins, not one event-loop turn per request. (conformance.test.ts runs
// every check with the features off and in polling mode.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { allocAligned, Ring } from '../dist/lib/index.js';
import { rawDepth1Reads } from './helpers/depth1-loop';
import { tempDir } from './helpers/tmp';

const t = tempDir();
afterAll(() => t.cleanup());
const saved = process.env.BLOCKRING_IO_URING;
afterEach(() => {
  if (saved === undefined) delete process.env.BLOCKRING_IO_URING;
  else process.env.BLOCKRING_IO_URING = saved;
});
const [major = 0, minor = 0] = os.release().split('.').map(Number);
const atLeast = (a: number, b: number): boolean => major > a || (major === a && minor >= b);

describe('setup features', () => {
  it('BLOCKRING_IO_URING limits the features, and names each one in engineInfo', async () => {
    process.env.BLOCKRING_IO_URING = 'none';
    const plain = new Ring({ engine: 'io_uring' });
    expect(plain.engineInfo.features).toEqual([]);
    await plain.close();
    process.env.BLOCKRING_IO_URING = 'single-issuer,ring-fd';
    const some = new Ring({ engine: 'io_uring' });
    if (atLeast(6, 0)) expect(some.engineInfo.features).toEqual(['single-issuer', 'ring-fd']);
    await some.close();
    delete process.env.BLOCKRING_IO_URING;
    const all = new Ring({ engine: 'io_uring' });
    if (atLeast(6, 6)) expect(all.engineInfo.features).toEqual(['single-issuer', 'defer-taskrun', 'no-sqarray', 'ring-fd', 'nowait-read']);
    await all.close();
    const other = new Ring({ engine: 'threads' });
    expect(other.engineInfo.features).toEqual([]);
    await other.close();
  });

  it('an unknown feature name is a coded error', () => {
    process.env.BLOCKRING_IO_URING = 'single-issuer,sqpoll';
    expect(() => new Ring({ engine: 'io_uring' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('rings past the 16 registered ring fds a thread may hold still work, on the plain fd', async () => {
    delete process.env.BLOCKRING_IO_URING;
    const rings = Array.from({ length: 20 }, () => new Ring({ engine: 'io_uring', depth: 1 }));
    try {
      const withFd = rings.filter((r) => r.engineInfo.features.includes('ring-fd')).length;
      if (atLeast(5, 18)) expect(withFd).toBeLessThanOrEqual(16);
      const file = path.join(t.dir, 'many.img');
      for (const [i, r] of rings.entries()) {
        const dev = await r.open(file, { create: true, size: 1 << 16 });
        const buf = Buffer.alloc(4096, i);
        expect(await dev.write(buf, 4096 * (i % 16))).toBe(4096);
        expect(await dev.read(Buffer.alloc(4096), 0)).toBe(4096);
      }
    } finally {
      await Promise.all(rings.map((r) => r.close()));
    }
  });
});

describe('pollMicros', () => {
  it('is checked: a whole number of microseconds up to 1e6', () => {
    for (const bad of [-1, 1.5, 2e6]) {
      expect(() => new Ring({ engine: 'io_uring', pollMicros: bad })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    expect(() => new Ring({ engine: 'io_uring', pollMicros: '5' as unknown as number })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('a depth-1 O_DIRECT loop gets its completions in the wakeup, not one loop turn each', async () => {
    const N = 2000;
    // Written and synced, so O_DIRECT reads go to the disk (a hole would be
    // zero-filled inside the submit).
    const file = path.join(t.dir, 'direct.img');
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 0x5a));
    const fd = fs.openSync(file, 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    // uv-poll: on the waiter-thread path the loop also turns idly while the
    // thread hands a wakeup over, so turns say nothing there.
    const ring = new Ring({ engine: 'io_uring', depth: 1, pollMicros: 20000, completions: 'uv-poll' });
    try {
      const dev = await ring.open(file, { direct: true });
      const buf = allocAligned(4096, dev);
      ring.raw.registerBuffers([buf], { fixed: false });
      // Turns in which completions were delivered: the loop also turns
      // idly while each wakeup's last read is on the disk.
      const { bad, turns } = await rawDepth1Reads(ring, dev, N);
      expect(bad).toBe(0);
      expect(buf[0]).toBe(0x5a);
      expect(turns).toBeLessThan(N / 8);
      expect(turns).toBeGreaterThanOrEqual(Math.floor(N / 64) - 1); // the loop still turns every 64 batches
    } finally {
      await ring.close();
    }
  });
});
