// An aborted request the kernel holds is cancelled there, not only
// discarded: on io_uring an IORING_OP_ASYNC_CANCEL goes in. A read on a FIFO
// with no writer stays in the kernel forever, so close() (which waits for
// every request) returns only if the cancel reached it. A request still
// dormant behind an ORDERED one, or waiting for room, is dropped in the
// engine and never issued: the bytes a later write puts in the FIFO are
// still there.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';

import { AbortError, Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
let fifo: string;
beforeEach(() => {
  t = tempDir();
  fifo = path.join(t.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
});
afterEach(() => t.cleanup());

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));
const within = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms))]);
// What is left in the FIFO, read without blocking.
const leftInFifo = (): Buffer => {
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const b = Buffer.alloc(65536);
    try {
      return b.subarray(0, fs.readSync(fd, b));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return Buffer.alloc(0);
      throw e;
    }
  } finally {
    fs.closeSync(fd);
  }
};

it('io_uring: an aborted read the kernel holds is cancelled in the kernel, and close() returns', async () => {
  const ring = new Ring({ engine: 'io_uring' });
  const dev = await ring.open(fifo);
  const c = new AbortController();
  const p = dev.read(Buffer.alloc(4096), 0, { signal: c.signal });
  await tick(); // issued: the kernel waits for a writer
  c.abort();
  await expect(p).rejects.toBeInstanceOf(AbortError);
  await within(ring.close(), 5000);
});

it.each([
  ['dormant behind an ORDERED read', { depth: 8 }, 'ordered'],
  ['waiting for room (depth 1)', { depth: 1 }, 'simple'],
] as const)('io_uring: an aborted request %s is dropped, never issued', async (_, opts, tag) => {
  const ring = new Ring({ engine: 'io_uring', ...opts });
  const dev = await ring.open(fifo);
  const first = dev.read(Buffer.alloc(4096), 0, { tag });
  await tick();
  const c = new AbortController();
  const second = dev.read(Buffer.alloc(4096), 0, { signal: c.signal });
  await tick(); // handed to the engine, held back there
  c.abort();
  await expect(second).rejects.toBeInstanceOf(AbortError);
  const w = fs.openSync(fifo, 'r+');
  try {
    fs.writeSync(w, Buffer.alloc(4096, 1));
    expect(await within(first, 5000)).toBe(4096);
    fs.writeSync(w, Buffer.alloc(4096, 2));
    await within(ring.close(), 5000);
    // Had the aborted read been issued once the first finished, it would have taken these.
    expect(leftInFifo().equals(Buffer.alloc(4096, 2))).toBe(true);
  } finally {
    fs.closeSync(w);
  }
});
