import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

// region.buffer is the file's page cache: what it writes, the device API and
// node:fs read, and the other way round, with no copy in between.
describe('mapped region: zero-copy buffer', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let file: string;
  withDevice({ ring: { depth: 16 }, open: { size: 1 << 20 }, name: 'disk.img' }, (f) => {
    ({ ring, dev, file } = f);
  });

  it('writes through the buffer reach dev.read() and node:fs', async () => {
    const region = dev.map();
    expect(region.length).toBe(1 << 20);
    expect(region.mode).toBe('shared');
    const buf = region.buffer;
    expect(buf).toBeInstanceOf(Buffer);
    expect(buf.length).toBe(1 << 20);
    expect(region.buffer).toBe(buf);
    buf.fill(0xa5, 8192, 8192 + 4096);
    buf.write('hello', 100);

    const r = Buffer.alloc(4096);
    expect(await dev.read(r, 8192)).toBe(4096);
    expect(r.every((b) => b === 0xa5)).toBe(true);
    const onDisk = fs.readFileSync(file);
    expect(onDisk.subarray(100, 105).toString()).toBe('hello');
    expect(onDisk.subarray(8192, 8192 + 4096).equals(r)).toBe(true);
    region.unmap();
  });

  it('sees dev.write() and node:fs writes without re-reading', async () => {
    const region = dev.map();
    const buf = region.buffer;
    await dev.write(Buffer.alloc(512, 0x3c), 65536);
    expect(buf.subarray(65536, 65536 + 512).every((b) => b === 0x3c)).toBe(true);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('from node:fs'), 0, 12, 200000);
    fs.closeSync(fd);
    expect(buf.subarray(200000, 200012).toString()).toBe('from node:fs');
    region.unmap();
  });

  it('maps an unaligned range and views exactly that slice', async () => {
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await dev.write(data, 0);
    const region = dev.map({ offset: 5000, length: 10001 });
    expect(region.offset).toBe(5000);
    expect(region.buffer.length).toBe(10001);
    expect(region.buffer.equals(data.subarray(5000, 15001))).toBe(true);
    region.buffer[0] = 0xee;
    region.buffer[10000] = 0xef;
    const r = Buffer.alloc(10003);
    await dev.read(r, 4999);
    expect(r[0]).toBe(data[4999]);
    expect(r[1]).toBe(0xee);
    expect(r[10001]).toBe(0xef);
    expect(r[10002]).toBe(data[15001]);
    await region.sync();
    region.unmap();
  });

  it('rejects ranges outside the device', () => {
    expect(() => dev.map({ offset: 1 << 20 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => dev.map({ offset: 4096, length: 1 << 20 })).toThrow(RangeError);
    expect(() => dev.map({ length: 0 })).toThrow(RangeError);
    expect(() => dev.map({ mode: 'both' as never })).toThrow(TypeError);
  });
});
