// Real block devices: loop devices with 512- and 4096-byte logical sectors
// and direct I/O on the backing file (root only).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { allocAligned, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';
import { isRoot, skipUnless, tempDir } from './helpers/tmp';

const SIZE = 32 << 20;
const skip = skipUnless(isRoot, 'loop-device tests need root (losetup)');

describe.skipIf(skip).each([512, 4096])('loop device with %i-byte sectors', (sector) => {
  let t: ReturnType<typeof tempDir>;
  let loop = '';

  beforeAll(() => {
    t = tempDir();
    const backing = path.join(t.dir, 'backing.img');
    fs.writeFileSync(backing, '');
    fs.truncateSync(backing, SIZE);
    loop = execFileSync('losetup', ['--find', '--show', '--sector-size', String(sector), '--direct-io=on', backing], {
      encoding: 'utf8',
    }).trim();
  });
  afterAll(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
    t.cleanup();
  });

  it('reports geometry', async () => {
    const ring = new Ring({ depth: 16 });
    const dev = await ring.open(loop, { direct: true });
    expect(dev.isBlockDevice).toBe(true);
    expect(dev.size).toBe(SIZE);
    expect(dev.logicalBlockSize).toBe(sector);
    expect(dev.physicalBlockSize).toBeGreaterThanOrEqual(sector);
    expect(dev.offsetAlignment).toBe(sector);
    expect(dev.memoryAlignment).toBeGreaterThanOrEqual(1);
    expect(dev.growable).toBe(false);
    await ring.close();
  });

  it('does aligned O_DIRECT I/O and refuses misaligned I/O before submission', async () => {
    const ring = new Ring({ depth: 16 });
    const dev = await ring.open(loop, { direct: true });
    const w = allocAligned(8 * sector, dev).fill(0x6d);
    expect(await dev.write(w, 4 * sector)).toBe(8 * sector);
    const r = allocAligned(8 * sector, dev);
    expect(await dev.read(r, 4 * sector)).toBe(8 * sector);
    expect(r.equals(w)).toBe(true);
    await expect(dev.read(allocAligned(sector, dev), sector / 2)).rejects.toMatchObject({
      name: 'RangeError', code: 'ERR_MISALIGNED', message: expect.stringContaining(String(sector)),
    });
    await expect(dev.write(allocAligned(sector + 1, dev), 0)).rejects.toThrow(RangeError);
    await expect(dev.write(allocAligned(sector, dev), SIZE)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await ring.close();
  });

  it('discard and write-zeroes read back as zeros', async () => {
    const ring = new Ring({ depth: 16 });
    const dev = await ring.open(loop, { direct: true });
    const span = 64 * 1024;
    const data = allocAligned(3 * span, dev).fill(0xee);
    expect(await dev.write(data, 0)).toBe(3 * span);
    expect(await dev.discard(0, span)).toBe(span);
    expect(await dev.writeZeroes(span, span)).toBe(span);
    expect(await dev.writeZeroes(2 * span, span, { unmap: true, tag: 'ordered' })).toBe(span);
    await dev.flush();
    const back = allocAligned(3 * span + sector, dev);
    expect(await dev.read(back, 0)).toBe(back.length);
    expect(back.subarray(0, 3 * span).every((b) => b === 0)).toBe(true);
    await expect(dev.discard(sector / 2, sector)).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_MISALIGNED' });
    await expect(dev.writeZeroes(0, sector + 1)).rejects.toMatchObject({ code: 'ERR_MISALIGNED' });
    await ring.close();
  });

  it('exclusive open is refused for a second opener', async () => {
    const ring = new Ring({ depth: 4 });
    const first = await ring.open(loop, { exclusive: true });
    await expect(ring.open(loop, { exclusive: true })).rejects.toMatchObject({ code: 'EBUSY' });
    await first.close();
    const again = await ring.open(loop, { exclusive: true });
    await again.close();
    await ring.close();
  });
});

describe('exclusive open on files', () => {
  let ring: Ring;
  let file: string;
  let first: BlockDevice;
  withDevice({ ring: { depth: 4 }, name: 'img', open: { size: 4096, exclusive: true } }, (f) => {
    ({ ring, file, dev: first } = f);
  });

  it('an OFD lock refuses a second exclusive opener, also within one process', async () => {
    await expect(ring.open(file, { exclusive: true })).rejects.toMatchObject({ code: 'EBUSY', syscall: 'fcntl' });
    const shared = await ring.open(file); // non-exclusive openers are not affected
    await shared.close();
    await first.close();
    const again = await ring.open(file, { exclusive: true });
    await again.close();
    await ring.close();
  });
});
