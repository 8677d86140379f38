// A single request larger than one kernel call moves (MAX_RW_COUNT, just
// under 2 GiB; and sqe->len is 32 bits) is split and completes as one.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

const BIG = 2 ** 31 + 3 * 4096; // past MAX_RW_COUNT (2 GiB - 4 KiB)

let t: ReturnType<typeof tempDir>;
let file: string;
let buf: Buffer;

beforeAll(() => {
  t = tempDir();
  file = path.join(t.dir, 'sparse.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, BIG + 4096); // sparse: reads of holes cost no disk I/O
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
  fs.writeSync(fd, Buffer.from('tail'), 0, 4, BIG - 4);
  fs.closeSync(fd);
  buf = Buffer.allocUnsafe(BIG);
});
afterAll(() => t.cleanup());

describe.each(['io_uring', 'libaio', 'threads', 'mmap'] as const)('%s', (engine) => {
  it('reads a 2 GiB + 12 KiB request in one call', async () => {
    const ring = new Ring({ engine, depth: 4 });
    const dev = await ring.open(file, { readOnly: true });
    buf.fill(0xff, BIG - 4096);
    expect(await dev.read(buf, 0)).toBe(BIG);
    expect(buf.toString('latin1', 0, 4)).toBe('head');
    expect(buf.toString('latin1', BIG - 4, BIG)).toBe('tail');
    expect(buf.subarray(BIG - 4096, BIG - 4).every((b) => b === 0)).toBe(true);
    await ring.close();
  });
});
