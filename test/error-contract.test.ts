// Every error is a TypeError/RangeError with a Node-style code, a
// BlockringError, or a BlockIoError whose code is an errno name and whose
// errno is negative as on Node's system errors; zero-length discard and
// write-zeroes complete with 0 as a zero-length write does.
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { allocAligned, BlockIoError, BlockringError, BufferPool, OP, Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

function expectIoError(e: unknown, code: string, syscall?: string): void {
  expect(e).toBeInstanceOf(BlockIoError);
  const err = e as BlockIoError;
  expect(err.code).toBe(code);
  expect(err.errno).toBeLessThan(0);
  expect(util.getSystemErrorName(err.errno)).toBe(code);
  if (syscall) expect(err.syscall).toBe(syscall);
}

it('ring.open failures are BlockIoErrors named for the errno', async () => {
  const ring = new Ring({ engine: 'threads' });
  fs.writeFileSync(path.join(t.dir, 'file'), '');
  fs.symlinkSync('loop-b', path.join(t.dir, 'loop-a'));
  fs.symlinkSync('loop-a', path.join(t.dir, 'loop-b'));
  const cases: [string, string][] = [
    [path.join(t.dir, 'missing'), 'ENOENT'],
    [t.dir, 'EISDIR'],
    [path.join(t.dir, 'loop-a'), 'ELOOP'],
    [path.join(t.dir, 'file', 'below'), 'ENOTDIR'],
  ];
  for (const [p, code] of cases) {
    const e = await ring.open(p).catch((x: unknown) => x);
    expectIoError(e, code, 'open');
    expect((e as BlockIoError).path).toBe(p);
  }
  await ring.close();
});

it('a failed resize (ftruncate) is a BlockIoError with its errno name', async () => {
  const ring = new Ring({ engine: 'threads' });
  const dev = await ring.open(path.join(t.dir, 'resize.img'), { create: true, size: 4096 });
  const e = await dev.resize(2 ** 53 - 1).catch((x: unknown) => x);
  expect(['EFBIG', 'EINVAL']).toContain((e as BlockIoError).code);
  expectIoError(e, (e as BlockIoError).code, 'ftruncate');
  expect(dev.size).toBe(4096);
  await ring.close();
});

it('the addon builds the user-facing classes itself: raw refusals and batch refusals', async () => {
  const ring = new Ring({ engine: 'threads' });
  const dev = await ring.open(path.join(t.dir, 'classes.img'), { create: true, size: 65536 });
  const handle = dev.handle;
  ring.raw.registerBuffers([Buffer.alloc(4096)]);
  await dev.close();
  // A record naming a closed device is refused natively: a BlockringError.
  ring.raw.prepare(0, 1, OP.read, handle, 0, 0, 4096, 0);
  let raw: unknown = null;
  try {
    ring.raw.submit(1);
  } catch (e) {
    raw = e;
  }
  expect(raw).toBeInstanceOf(BlockringError);
  expect(raw).toMatchObject({ name: 'BlockringError', code: 'ERR_DEVICE_CLOSED', message: 'record 0: device is closed' });
  // A record past its registered buffer: a RangeError with its code.
  const d2 = await ring.open(path.join(t.dir, 'classes2.img'), { create: true, size: 65536 });
  ring.raw.prepare(0, 2, OP.read, d2, 0, 0, 8192, 0);
  expect(() => ring.raw.submit(1)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
  await ring.close();
});

describe('raw interface, pools and allocation refuse bad arguments with codes', () => {
  const bad: unknown[] = [1n, Symbol('s'), null, undefined, {}, 'x'];
  it('raw.prepare, raw.submit, raw.registerBuffers', async () => {
    const ring = new Ring({ engine: 'threads' });
    const dev = await ring.open(path.join(t.dir, 'raw.img'), { create: true, size: 65536 });
    ring.raw.registerBuffers([Buffer.alloc(4096)]);
    const args: unknown[] = [0, 1, OP.read, dev, 0, 0, 4096, 0, 0, 0];
    for (let i = 0; i < args.length; i++) {
      for (const v of bad) {
        if (v === undefined && i >= 8) continue; // tag and flags have defaults
        const a = args.slice();
        a[i] = v;
        let err: unknown = null;
        try {
          (ring.raw.prepare as (...x: unknown[]) => void)(...a);
          ring.raw.submit(1);
        } catch (e) {
          err = e;
        }
        // A string or object record field is a NaN in the record, refused at submit.
        expect(err, `argument ${i} = ${String(v)}`).toBeInstanceOf(Error);
        expect((err as { code?: unknown }).code, `argument ${i} = ${String(v)}`).toMatch(/^ERR_/);
      }
    }
    for (const v of [...bad, -1, 2 ** 40, 0.5]) {
      let err: unknown = null;
      try {
        ring.raw.submit(v as number);
      } catch (e) {
        err = e;
      }
      if (v === 1n || v === 0.5 || v === undefined) continue; // 1n is a count of 1 (bigints are accepted)
      expect((err as { code?: unknown } | null)?.code, String(v)).toMatch(/^ERR_/);
    }
    for (const v of bad) {
      expect(() => ring.raw.registerBuffers(v as Buffer[]), String(v)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_/) }));
      expect(() => ring.raw.registerBuffers([Buffer.alloc(1)], v as object), String(v)).toSatisfy((f: () => void) => {
        try {
          f();
          return v === undefined;
        } catch (e) {
          return typeof (e as { code?: unknown }).code === 'string';
        }
      });
    }
    await ring.close();
  });

  it('BufferPool and allocAligned', () => {
    for (const v of [1n << 70n, Symbol('s'), null, {}, 'x', -1, 0.5, 3]) {
      expect(() => new BufferPool(1, 4096, { alignment: v as number }), String(v)).toThrow(
        expect.objectContaining({ code: expect.stringMatching(/^ERR_/) }));
      if (v !== 3) expect(() => new BufferPool(v as number, 4096), String(v)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_/) }));
    }
    expect(() => new BufferPool(1, 4096, null as unknown as object)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => allocAligned(2 ** 50)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new BufferPool(2 ** 20, 2 ** 20)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
  });
});

// What each engine really issued for a write-zeroes past the largest file
// size (fallocate fails with EFBIG or EINVAL), and for a write and a flush.
const SYSCALLS = {
  io_uring: ['io_uring_enter/IORING_OP_FALLOCATE', /^io_uring_enter\/IORING_OP_WRITE(V|_FIXED)?$/],
  libaio: ['fallocate', /^io_submit\/IOCB_CMD_PWRITEV?$|^pwritev$/],
  threads: ['fallocate', /^pwritev$/],
  mmap: ['fallocate', /^mmap$/],
} as const;

describe.each(Object.keys(SYSCALLS) as (keyof typeof SYSCALLS)[])('%s: BlockIoError.syscall names the call the engine made', (engine) => {
  it('fallocate, and a write past the largest file size', async () => {
    const ring = new Ring({ engine });
    const dev = await ring.open(path.join(t.dir, `${engine}-syscall.img`), { create: true, size: 65536, growable: true });
    const z = await dev.writeZeroes(2 ** 53 - 2, 1).catch((x: unknown) => x);
    expectIoError(z, (z as BlockIoError).code, SYSCALLS[engine][0]);
    const w = await dev.write(Buffer.alloc(4096), 2 ** 53 - 4096 * 2).catch((x: unknown) => x);
    expectIoError(w, (w as BlockIoError).code);
    expect((w as BlockIoError).syscall).toMatch(SYSCALLS[engine][1]);
    await ring.close();
  });
});

describe.each(['io_uring', 'libaio', 'threads', 'mmap', 'null'] as const)('%s', (engine) => {
  it('zero-length discard and writeZeroes complete with 0, as a zero-length write', async () => {
    const ring = new Ring({ engine });
    const dev = await ring.open(path.join(t.dir, `${engine}-zero.img`), { create: true, size: 65536 });
    expect(await dev.write(Buffer.alloc(0), 4096)).toBe(0);
    expect(await dev.discard(4096, 0)).toBe(0);
    expect(await dev.writeZeroes(4096, 0)).toBe(0);
    expect(await dev.writeZeroes(65536, 0, { unmap: true })).toBe(0);
    const res = await ring.submit([
      { op: 'discard', dev, offset: 0, length: 0, tag: 'ordered' },
      { op: 'writeZeroes', dev, offset: 0, length: 0 },
      { op: 'write', dev, buffer: Buffer.alloc(0), offset: 0 },
    ]);
    expect(res.map((r) => [r.bytes, r.error?.code])).toEqual([[0, undefined], [0, undefined], [0, undefined]]);
    await ring.close();
  });
});
