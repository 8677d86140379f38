// Every class of bad input gets a typed error before anything is submitted.
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { describe, expect, it } from 'vitest';

import { BlockIoError, OP, Ring, type BatchRequest, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let dir: string;
let ring: Ring;
let dev: BlockDevice;
let file: string;
const any = (v: unknown) => v as never;

withDevice({ ring: { depth: 8 }, open: { size: 65536 }, name: 'img', scope: 'all' }, (f) => {
  ({ dir, ring, dev, file } = f);
});

describe('Ring options', () => {
  it('rejects bad depth and engine', () => {
    expect(() => new Ring({ depth: 3 })).toThrow(RangeError);
    expect(() => new Ring({ depth: 0 })).toThrow(RangeError);
    expect(() => new Ring({ depth: -1 })).toThrow(RangeError);
    expect(() => new Ring({ depth: any('64') })).toThrow(TypeError);
    expect(() => new Ring({ engine: any('nope') })).toThrow(TypeError);
    expect(() => new Ring(any(5))).toThrow(TypeError);
    expect(() => new Ring({ trace: any('yes') })).toThrow(TypeError);
    expect(() => new Ring({ directSubmitBatch: -1 })).toThrow(RangeError);
    expect(() => new Ring({ directSubmitBatch: any('2') })).toThrow(TypeError);
  });
});

describe('open', () => {
  it('rejects bad paths and options', async () => {
    await expect(ring.open(any(42))).rejects.toThrow(TypeError);
    await expect(ring.open('')).rejects.toThrow(TypeError);
    await expect(ring.open(file, { size: -1 })).rejects.toThrow(RangeError);
    await expect(ring.open(file, { direct: any('no') })).rejects.toThrow(TypeError);
    await expect(ring.open(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('device requests', () => {
  it('wrong types are TypeErrors', async () => {
    await expect(dev.read(any('buf'), 0)).rejects.toThrow(TypeError);
    await expect(dev.read(any(null), 0)).rejects.toThrow(TypeError);
    await expect(dev.write(any([1, 2]), 0)).rejects.toThrow(TypeError);
    await expect(dev.read(Buffer.alloc(1), any('0'))).rejects.toThrow(TypeError);
    await expect(dev.readv(any(Buffer.alloc(1)), 0)).rejects.toThrow(TypeError);
    await expect(dev.writev([Buffer.alloc(1), any('x')], 0)).rejects.toThrow(TypeError);
    await expect(dev.read(Buffer.alloc(1), 0, { tag: any('urgent') })).rejects.toThrow(TypeError);
    await expect(dev.write(Buffer.alloc(1), 0, any('fua'))).rejects.toThrow(TypeError);
    await expect(dev.discard(any({}), 1)).rejects.toThrow(TypeError);
  });

  it('negative, fractional and unsafe offsets or lengths are RangeErrors', async () => {
    await expect(dev.read(Buffer.alloc(1), -1)).rejects.toThrow(RangeError);
    await expect(dev.read(Buffer.alloc(1), 1.5)).rejects.toThrow(RangeError);
    await expect(dev.read(Buffer.alloc(1), 2 ** 53)).rejects.toThrow(RangeError);
    await expect(dev.read(Buffer.alloc(1), NaN)).rejects.toThrow(RangeError);
    await expect(dev.read(Buffer.alloc(1), -1n)).rejects.toThrow(RangeError);
    await expect(dev.writeZeroes(0, -5)).rejects.toThrow(RangeError);
    await expect(dev.readv([], 0)).rejects.toThrow(RangeError);
    // Writes past the end of a device that is not growable.
    await expect(dev.write(Buffer.alloc(2), 65535)).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    await expect(dev.discard(65536, 1)).rejects.toThrow(RangeError);
    expect(await dev.read(Buffer.alloc(4), 8n)).toBe(4);
  });

  it('kernel errors come back as BlockIoError with errno details', async () => {
    // Zeroing past the maximum file size makes fallocate fail with EFBIG.
    const grow = await ring.open(file, { growable: true });
    const err = await grow.writeZeroes(2 ** 53 - 2, 1).catch((e: unknown) => e);
    await grow.close();
    expect(err).toBeInstanceOf(BlockIoError);
    const e = err as BlockIoError;
    expect(['EFBIG', 'EINVAL']).toContain(e.code);
    // Negative, as on Node's own system errors.
    expect(e.errno).toBeLessThan(0);
    expect(util.getSystemErrorName(e.errno)).toBe(e.code);
    // The call the engine made: io_uring names the SQE opcode it carried.
    expect(e.syscall).toBe(ring.engine === 'io_uring' ? 'io_uring_enter/IORING_OP_FALLOCATE' : 'fallocate');
    expect(e.op).toBe('writeZeroes');
    expect(e.offset).toBe(2 ** 53 - 2);
    expect(e.length).toBe(1);
    expect(e.path).toBe(file);
  });
});

describe('batches', () => {
  it('a bad request anywhere rejects the whole batch and submits nothing', async () => {
    fs.writeFileSync(file, Buffer.alloc(65536));
    const good: BatchRequest = { op: 'write', dev, buffer: Buffer.alloc(512, 0xff), offset: 0 };
    const cases: unknown[] = [
      [good, { op: 'frobnicate', dev, offset: 0 }],
      [good, { op: 'write', dev: {}, buffer: Buffer.alloc(1), offset: 0 }],
      [good, { op: 'write', dev, buffer: 'x', offset: 0 }],
      [good, { op: 'write', dev, buffer: Buffer.alloc(1), offset: -4 }],
      [good, { op: 'discard', dev, offset: 0, length: 'all' }],
      [good, null],
      'not an array',
    ];
    for (const c of cases) await expect(ring.submit(any(c))).rejects.toThrow();
    expect(fs.readFileSync(file).subarray(0, 512).every((b) => b === 0)).toBe(true);
    const other = new Ring({ depth: 4 });
    const foreign = await other.open(file);
    await expect(ring.submit([{ op: 'read', dev: foreign, buffer: Buffer.alloc(1), offset: 0 }])).rejects.toThrow(TypeError);
    await other.close();
  });

  it('bad raw records throw synchronously and submit nothing', () => {
    const raw = ring.raw;
    raw.registerBuffers([Buffer.alloc(4096)]);
    raw.prepare(0, 1, OP.write, dev, 0, 0, 4096, 0);
    raw.prepare(1, 2, OP.write, dev, 5, 0, 4096, 0); // no buffer 5
    expect(() => raw.submit(2)).toThrow(RangeError);
    raw.prepare(1, 2, OP.write, dev, 0, 1, 4096, 0); // past the buffer's end
    expect(() => raw.submit(2)).toThrow(RangeError);
    raw.prepare(1, 2, 99, dev, 0, 0, 1, 0);
    expect(() => raw.submit(2)).toThrow(TypeError);
    raw.prepare(1, 2, OP.read, 12345, 0, 0, 1, 0);
    expect(() => raw.submit(2)).toThrow(expect.objectContaining({ code: 'ERR_DEVICE_CLOSED' }));
    raw.prepare(1, 2, OP.read, dev, 0, 0, 1, -1);
    expect(() => raw.submit(2)).toThrow(RangeError);
    raw.prepare(1, -2, OP.read, dev, 0, 0, 1, 0);
    expect(() => raw.submit(2)).toThrow(TypeError);
    raw.prepare(1, 1.5, OP.read, dev, 0, 0, 1, 0);
    expect(() => raw.submit(2)).toThrow(TypeError);
    expect(() => raw.submit(1e9)).toThrow(RangeError);
    expect(ring.raw.registerBuffers.bind(ring.raw, any('x'))).toThrow(TypeError);
  });
});
