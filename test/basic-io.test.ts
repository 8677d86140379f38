import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

describe('basic I/O on io_uring', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let file: string;
  withDevice({ ring: { depth: 64 }, open: { size: 1 << 20 }, name: 'disk.img' }, (f) => {
    ({ ring, dev, file } = f);
  });

  it('reports the engine and depth', () => {
    expect(ring.engine).toBe('io_uring');
    expect(ring.depth).toBe(64);
    expect(dev.size).toBe(1 << 20);
  });

  it('writes and reads back', async () => {
    const w = Buffer.alloc(8192, 0x5a);
    expect(await dev.write(w, 4096)).toBe(8192);
    const r = Buffer.alloc(8192);
    expect(await dev.read(r, 4096)).toBe(8192);
    expect(r.equals(w)).toBe(true);
    expect(fs.readFileSync(file).subarray(4096, 4096 + 8192).equals(w)).toBe(true);
  });
});
