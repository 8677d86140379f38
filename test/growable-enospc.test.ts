// A growable image on a full filesystem: the write that cannot extend it
// fails alone with ENOSPC; earlier data survives; after space is freed the
// same write succeeds.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { BlockIoError, Ring } from '../dist/lib/index.js';
import { isRoot, skipUnless, tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
let mounted = false;

beforeAll(() => {
  t = tempDir();
  if (!isRoot) return;
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', t.dir]);
  mounted = true;
});
afterAll(() => {
  if (mounted) execFileSync('umount', [t.dir]);
  t.cleanup();
});

it.skipIf(skipUnless(isRoot, 'ENOSPC test needs root to mount a 1 MiB tmpfs'))('ENOSPC fails only the extending write; a retry after freeing space succeeds (needs root for mount)', async () => {
  const ring = new Ring({ depth: 16 });
  const img = path.join(t.dir, 'disk.img');
  const dev = await ring.open(img, { create: true, growable: true });
  expect(dev.growable).toBe(true);
  expect(dev.size).toBe(0);
  const early = Buffer.alloc(256 << 10, 0xa1);
  expect(await dev.write(early, 0)).toBe(early.length);
  expect(dev.size).toBe(early.length);

  // Fill the rest of the filesystem.
  const filler = path.join(t.dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 << 10, 0xff);
  for (;;) {
    try {
      if (fs.writeSync(fd, chunk) < chunk.length) break;
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      break;
    }
  }
  fs.closeSync(fd);

  const late = Buffer.alloc(256 << 10, 0xb2);
  const err = await dev.write(late, early.length).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BlockIoError);
  expect((err as BlockIoError).code).toBe('ENOSPC');
  expect((err as BlockIoError).offset).toBe(early.length);

  // Earlier data is intact and the device is still usable.
  const back = Buffer.alloc(early.length);
  expect(await dev.read(back, 0)).toBe(early.length);
  expect(back.equals(early)).toBe(true);

  fs.unlinkSync(filler);
  expect(await dev.write(late, early.length)).toBe(late.length);
  const back2 = Buffer.alloc(late.length);
  expect(await dev.read(back2, early.length)).toBe(late.length);
  expect(back2.equals(late)).toBe(true);
  expect(dev.size).toBe(early.length + late.length);
  await ring.close();
});

it('a device that is not growable refuses writes past its end; resize moves the end', async () => {
  const d = tempDir();
  const ring = new Ring({ depth: 8 });
  const dev = await ring.open(path.join(d.dir, 'fixed.img'), { create: true, size: 8192 });
  await expect(dev.write(Buffer.alloc(4096), 8192)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  await expect(dev.write(Buffer.alloc(4096), 6144)).rejects.toThrow(/growable/);
  expect(await dev.read(Buffer.alloc(4096), 8192)).toBe(0); // reads past the end are short, not errors
  await dev.resize(16384);
  expect(dev.size).toBe(16384);
  expect(fs.statSync(path.join(d.dir, 'fixed.img')).size).toBe(16384);
  expect(await dev.write(Buffer.alloc(4096, 1), 8192)).toBe(4096);
  await dev.resize(4096);
  expect(dev.size).toBe(4096);
  await expect(dev.write(Buffer.alloc(1), 4096)).rejects.toThrow(RangeError);
  await expect(dev.resize(-1)).rejects.toThrow(RangeError);
  await ring.close();
  d.cleanup();
});
