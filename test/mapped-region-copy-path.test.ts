import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

// Where V8 forbids external memory (Electron's memory cage) region.buffer
// cannot exist; region.read()/write() copy in native code instead.
// BLOCKRING_NO_EXTERNAL_BUFFERS=1 makes the addon behave that way here.
describe('mapped region: copy path without external buffers', () => {
  let dev: BlockDevice;
  let file: string;

  beforeEach(() => {
    process.env.BLOCKRING_NO_EXTERNAL_BUFFERS = '1';
  });
  afterEach(() => {
    delete process.env.BLOCKRING_NO_EXTERNAL_BUFFERS;
  });
  withDevice({ ring: { depth: 16 }, open: { size: 256 * 1024 } }, (f) => {
    ({ dev, file } = f);
  });

  it('region.buffer throws an error that says why', () => {
    const region = dev.map();
    expect(() => region.buffer).toThrow(expect.objectContaining({ code: 'ERR_EXTERNAL_BUFFERS_DISALLOWED' }));
    expect(() => region.buffer).toThrow(/external ArrayBuffers/);
    region.unmap();
  });

  it('write() reaches the device and node:fs; read() sees device writes', async () => {
    const region = dev.map({ offset: 1000, length: 100000 });
    const src = Buffer.alloc(5000);
    for (let i = 0; i < src.length; i++) src[i] = (i * 31) & 0xff;
    expect(region.write(src, 3)).toBe(5000);
    const r = Buffer.alloc(5000);
    await dev.read(r, 1003);
    expect(r.equals(src)).toBe(true);
    expect(fs.readFileSync(file).subarray(1003, 6003).equals(src)).toBe(true);

    await dev.write(Buffer.alloc(300, 0x77), 50000);
    const got = new Uint8Array(400);
    expect(region.read(got, 49000 - 50)).toBe(400);
    expect(got.subarray(0, 50).every((b) => b === 0)).toBe(true);
    expect(got.subarray(50, 350).every((b) => b === 0x77)).toBe(true);
    const dv = new DataView(new ArrayBuffer(8));
    region.read(dv, 49000);
    expect(dv.getUint8(7)).toBe(0x77);
    region.unmap();
  });

  it('checks bounds before copying', () => {
    const region = dev.map({ length: 4096 });
    expect(() => region.read(Buffer.alloc(10), 4090)).toThrow(RangeError);
    expect(() => region.write(Buffer.alloc(4097), 0)).toThrow(RangeError);
    expect(() => region.read('x' as never, 0)).toThrow(TypeError);
    expect(region.read(Buffer.alloc(6), 4090)).toBe(6);
    region.unmap();
  });
});
