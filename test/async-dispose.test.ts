// Symbol.asyncDispose on Ring, BlockDevice and MappedRegion: `await using`
// closes (or unmaps) at the end of the scope, after in-flight requests.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';

import { Ring, type BlockDevice, type MappedRegion } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

it('await using closes the device and the ring, and unmaps the region, at the end of the scope', async () => {
  const file = path.join(t.dir, 'img');
  let ring: Ring;
  let dev: BlockDevice;
  let region: MappedRegion;
  let pending: Promise<number>;
  {
    await using r = new Ring({ depth: 8 });
    await using d = await r.open(file, { create: true, size: 1 << 16 });
    await using m = d.map({ length: 4096 });
    m.buffer.write('mapped', 0);
    pending = d.write(Buffer.alloc(4096, 9), 4096); // in flight when the scope ends
    [ring, dev, region] = [r, d, m];
    expect(ring.closed || dev.closed || region.unmapped).toBe(false);
  }
  expect(region.unmapped).toBe(true);
  expect(dev.closed).toBe(true);
  expect(ring.closed).toBe(true);
  expect(await pending).toBe(4096); // close waited for it
  const data = fs.readFileSync(file);
  expect(data.subarray(0, 6).toString()).toBe('mapped');
  expect(data.subarray(4096, 8192).equals(Buffer.alloc(4096, 9))).toBe(true);
});

it('the dispose methods are the close and unmap of each class', async () => {
  const ring = new Ring({ depth: 8 });
  const dev = await ring.open(path.join(t.dir, 'img2'), { create: true, size: 1 << 16 });
  const region = dev.map();
  await region[Symbol.asyncDispose]();
  expect(region.unmapped).toBe(true);
  await dev[Symbol.asyncDispose]();
  expect(dev.closed).toBe(true);
  await ring[Symbol.asyncDispose]();
  expect(ring.closed).toBe(true);
  await ring[Symbol.asyncDispose](); // idempotent, as close() is
});
