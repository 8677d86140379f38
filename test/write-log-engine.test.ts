// The engine's write log (native/engine/write_log.h): a device opened with
// `writeLog` has every write, write-zeroes, discard and flush that reaches
// the kernel recorded, whichever API sent it (Promise, batch, raw records)
// and on every engine; the log rebuilds the file, and crash images hold
// what a completed flush made durable.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OP, Ring, serveVhostUserBlk, WriteLog, type LogEntry } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

const SIZE = 1 << 20;
const changes = (entries: readonly LogEntry[]) => entries.filter((e) => e.kind !== 'flush');

for (const engine of ['io_uring', 'libaio', 'threads', 'mmap'] as const) {
  describe(engine, () => {
    it('records every change from every API, once, with its data; the log rebuilds the file', async () => {
      const file = path.join(t.dir, `${engine}.raw`);
      const initial = Buffer.alloc(SIZE, 0x5a);
      fs.writeFileSync(file, initial);
      const log = new WriteLog();
      const ring = new Ring({ engine, depth: 16 });
      const dev = await ring.open(file, { writeLog: log });
      const pat = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (seed * 31 + i) & 0xff));

      // Promise writes, some overlapping (the log keeps their completion order).
      const a = pat(5000, 1);
      const b = pat(4096, 2);
      await Promise.all([dev.write(a, 100), dev.write(b, 8192)]);
      const before = log.now();
      await dev.flush();
      const after = log.now();
      // A batch: writes, a write-zeroes and a discard.
      const c = pat(777, 3);
      const results = await ring.submit([
        { op: 'write', dev, buffer: c, offset: 3000 },
        { op: 'writeZeroes', dev, offset: 65536, length: 8192 },
        { op: 'discard', dev, offset: 131072, length: 4096 },
      ]);
      for (const r of results) expect(r.error).toBeUndefined();
      // Raw records.
      const bufs = [pat(4096, 4), pat(512, 5)];
      ring.raw.registerBuffers(bufs, { fixed: false });
      ring.raw.prepare(0, 1, OP.write, dev, 0, 0, 4096, 200_000);
      ring.raw.prepare(1, 2, OP.write, dev, 1, 0, 512, 300_001);
      await new Promise<void>((resolve) => {
        let n = 0;
        ring.raw.onComplete = (cq, count) => {
          for (let k = 0; k < count; k++) expect(cq[k * 4 + 1]).toBeGreaterThan(0);
          if ((n += count) === 2) resolve();
        };
        ring.raw.submit(2);
      });
      ring.raw.onComplete = null;
      // Reads are not changes.
      await dev.read(Buffer.alloc(4096), 0);
      await dev.close();
      await ring.close();

      const entries = log.entries;
      const ch = changes(entries);
      expect(ch.map((e) => [e.kind, e.offset]).sort()).toEqual([
        ['write', 100], ['write', 8192], ['write', 3000], ['zeroes', 65536], ['zeroes', 131072],
        ['write', 200_000], ['write', 300_001]].sort());
      for (const e of entries) {
        expect(e.issued).toBeGreaterThan(0);
        expect(e.completed).toBeGreaterThan(e.issued);
      }
      const byOffset = new Map(ch.map((e) => [e.offset, e]));
      for (const [off, data] of [[100, a], [8192, b], [3000, c], [200_000, bufs[0]!], [300_001, bufs[1]!]] as const) {
        const e = byOffset.get(off)!;
        expect(e.kind === 'write' && e.data.equals(data)).toBe(true);
      }
      // The flush this test issued is in the log, between the stamps taken around it.
      const flushes = log.flushes();
      expect(flushes.some((f) => f.issued > before && f.completed < after)).toBe(true);
      // Everything applied: the file as it is now.
      expect(log.crashImage(initial, log.now(), () => true).equals(fs.readFileSync(file))).toBe(true);
      // A crash just after the flush: the two writes before it, nothing after.
      const crash = log.crashImage(initial, after, () => false);
      expect(crash.subarray(100, 5100).equals(a)).toBe(true);
      expect(crash.subarray(8192, 12288).equals(b)).toBe(true);
      expect(crash.subarray(65536, 65536 + 8192).every((x) => x === 0x5a)).toBe(true);
    });
  });
}

it('wrap() logs a device outside the engine on the same counter', async () => {
  const file = path.join(t.dir, 'wrap.raw');
  fs.writeFileSync(file, Buffer.alloc(SIZE));
  const log = new WriteLog();
  const ring = new Ring();
  const logged = await ring.open(file, { writeLog: log });
  const plain = await ring.open(path.join(t.dir, 'wrap.raw'));
  const wrapped = log.wrap(plain);
  await logged.write(Buffer.alloc(512, 1), 0);
  await wrapped.write(Buffer.alloc(512, 2), 512);
  await wrapped.flush();
  await logged.close();
  await plain.close();
  await ring.close();
  const e = log.entries;
  expect(e.map((x) => x.kind)).toEqual(['write', 'write', 'flush']);
  expect(e[0]!.completed).toBeLessThan(e[1]!.issued);
  expect(e[2]!.completed).toBeGreaterThan(e[2]!.issued);
});

it('attachLog refuses anything but a WriteLog handle', async () => {
  const file = path.join(t.dir, 'attach.raw');
  fs.writeFileSync(file, Buffer.alloc(SIZE));
  const ring = new Ring();
  // Options are checked before the open: a plain object is no WriteLog.
  await expect(ring.open(file, { writeLog: {} as WriteLog })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  await ring.close();
});

it('a writable device with a writeLog is not served by vhost-user-blk (its engine is outside the log)', async () => {
  const file = path.join(t.dir, 'vhost.raw');
  fs.writeFileSync(file, Buffer.alloc(SIZE));
  const ring = new Ring();
  const dev = await ring.open(file, { writeLog: new WriteLog() });
  expect(() => serveVhostUserBlk(dev, { socket: path.join(t.dir, 'v.sock') })).toThrow(expect.objectContaining({ code: 'ERR_NOT_SUPPORTED' }));
  await ring.close();
});
