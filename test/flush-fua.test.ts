import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let ring: Ring;
let dev: BlockDevice;
let file: string;
withDevice({ ring: { depth: 16 }, open: { size: 1 << 16 }, name: 'img' }, (f) => {
  ({ ring, dev, file } = f);
});

it('FUA writes land and report their length', async () => {
  const w = Buffer.alloc(4096, 0xee);
  expect(await dev.write(w, 0, { fua: true })).toBe(4096);
  expect(await dev.writev([w, w], 4096, { fua: true })).toBe(8192);
  expect(fs.readFileSync(file).subarray(0, 12288).equals(Buffer.alloc(12288, 0xee))).toBe(true);
});

it('flush (fdatasync) and flush with metadata (fsync) resolve to undefined', async () => {
  await dev.write(Buffer.alloc(512, 1), 0);
  await expect(dev.flush()).resolves.toBeUndefined();
  await expect(dev.flush({ metadata: true })).resolves.toBeUndefined();
  const [r] = await ring.submit([{ op: 'flush', dev, metadata: true }]);
  expect(r).toEqual({ bytes: 0 });
});

it('flush works on a read-only device, writes do not, and options are type-checked', async () => {
  const ro = await ring.open(file, { readOnly: true });
  await expect(ro.flush()).resolves.toBeUndefined();
  await expect(ro.write(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'ERR_READ_ONLY' });
  await expect(dev.write(Buffer.alloc(1), 0, { fua: 1 as unknown as boolean })).rejects.toThrow(TypeError);
  await ro.close();
});
