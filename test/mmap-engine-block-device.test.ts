import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { isRoot, tempDir } from './helpers/tmp';

// The mmap engine on a real block device (a loop device): the size comes
// from BLKGETSIZE64, nothing extends it, and writes past the end fail with
// a RangeError before submission.
const SIZE = 4 << 20;
let loop = '';
let why = '';
if (!isRoot) why = 'needs root for losetup';

describe.skipIf(!isRoot)('mmap engine on a block device', () => {
  let t: ReturnType<typeof tempDir>;

  beforeAll(() => {
    t = tempDir();
    const img = path.join(t.dir, 'loop.img');
    execFileSync('truncate', ['-s', String(SIZE), img]);
    loop = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
  });
  afterAll(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
    t.cleanup();
  });

  it('reads, writes, flushes and stops at the end of the device', async () => {
    const ring = new Ring({ engine: 'mmap', depth: 8 });
    const dev = await ring.open(loop);
    expect(dev.isBlockDevice).toBe(true);
    expect(dev.size).toBe(SIZE);
    expect(await dev.write(Buffer.alloc(4096, 7), 8192)).toBe(4096);
    await dev.flush();
    const r = Buffer.alloc(8192);
    expect(await dev.read(r, SIZE - 4096)).toBe(4096); // short at the end
    expect(await dev.read(r, SIZE)).toBe(0);
    // Past the end of a block device: refused before submission.
    await expect(dev.write(Buffer.alloc(16), SIZE)).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    const region = dev.map({ offset: 8192, length: 4096 });
    expect(region.buffer.every((b) => b === 7)).toBe(true);
    region.unmap();
    await ring.close();
  });
});

if (why) console.log(`skipping mmap-engine-block-device: ${why}`);
