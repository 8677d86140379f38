// dev.allocation() on raw files and block devices: SEEK_DATA/SEEK_HOLE runs,
// checked against qemu-img map of the same file.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';
import { isRoot, skipUnless, tempDir } from './helpers/tmp';

const MiB = 1 << 20;

describe('allocation of a raw file', () => {
  let file: string;
  let dev: BlockDevice;
  // 8 MiB, sparse, with data at [1, 2) MiB and [5 MiB, +64 KiB).
  const prepare = (f: string) => {
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 8 * MiB);
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, 1 * MiB);
    fs.writeSync(fd, Buffer.alloc(64 << 10, 2), 0, 64 << 10, 5 * MiB);
    fs.closeSync(fd);
  };
  withDevice({ ring: { depth: 8 }, name: 'sparse.img', prepare, scope: 'all' }, (f) => {
    ({ file, dev } = f);
  });

  it('reports data and holes contiguously, as qemu-img map does', async () => {
    const ext = await dev.allocation(0, dev.size);
    // Contiguous, in order, covering the device.
    let pos = 0;
    for (const e of ext) {
      expect(e.offset).toBe(pos);
      expect(e.length).toBeGreaterThan(0);
      pos += e.length;
    }
    expect(pos).toBe(8 * MiB);
    const map = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', '-f', 'raw', file], { encoding: 'utf8' })) as
      { start: number; length: number; data: boolean; zero: boolean }[];
    const merged = (xs: { offset: number; length: number; data: boolean }[]) => {
      const out: { offset: number; length: number; data: boolean }[] = [];
      for (const x of xs) {
        const last = out[out.length - 1];
        if (last && last.data === x.data) last.length += x.length;
        else out.push({ ...x });
      }
      return out;
    };
    expect(merged(ext.map((e) => ({ offset: e.offset, length: e.length, data: e.type === 'data' }))))
      .toEqual(merged(map.map((m) => ({ offset: m.start, length: m.length, data: m.data }))));
    expect(ext.some((e) => e.type === 'hole')).toBe(true);
    expect(ext.find((e) => e.offset <= 1 * MiB && e.offset + e.length > 1 * MiB)?.type).toBe('data');

    // A window in the middle is clipped to it; past the end is empty.
    const mid = await dev.allocation(MiB + 4096, 2 * MiB);
    expect(mid[0]).toEqual({ offset: MiB + 4096, length: MiB - 4096, type: 'data' });
    expect(mid.reduce((n, e) => n + e.length, 0)).toBe(2 * MiB);
    expect(await dev.allocation(8 * MiB, 4096)).toEqual([]);
    expect(await dev.allocation(8 * MiB - 10, 4096)).toEqual([{ offset: 8 * MiB - 10, length: 10, type: 'hole' }]);
    await expect(dev.allocation(-1, 1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await dev.close();
    await expect(dev.allocation(0, 1)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED' });
  });
});

describe.skipIf(skipUnless(isRoot, 'loop-device allocation needs root (losetup)'))('allocation of a block device', () => {
  it('is all data', async () => {
    const t = tempDir();
    const backing = path.join(t.dir, 'backing.img');
    fs.writeFileSync(backing, '');
    fs.truncateSync(backing, 4 * MiB);
    const loop = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
    const ring = new Ring({ depth: 8 });
    try {
      const dev = await ring.open(loop);
      expect(await dev.allocation(4096, 8 * MiB)).toEqual([{ offset: 4096, length: 4 * MiB - 4096, type: 'data' }]);
      await dev.close();
    } finally {
      await ring.close();
      execFileSync('losetup', ['-d', loop]);
      t.cleanup();
    }
  });
});
