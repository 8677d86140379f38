// The engine conformance checks: one set of behaviours every engine must
// show, run by test/conformance.test.ts for each engine and by the fallback
// tests in a child process (`node core-checks.mjs --engine auto ...`), where
// the environment denies io_uring. Plain JS with node:assert so both can
// use it. Each check takes a context:
//   ring      a shared Ring (depth 64, trace on) on the engine under test
//   engine    the engine name every ring must report
//   direct    open devices with O_DIRECT (4096-aligned buffers and offsets)
//   dir       a scratch directory
//   makeRing  (options) => new Ring on the same engine (lifecycle checks)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { ALIGN, AlignedArena } from './aligned.mjs';
import { rng } from './rng.mjs';

const INDEX = fileURLToPath(new URL('../../dist/lib/index.js', import.meta.url));

/** Buffers for the mode under test: page-aligned under O_DIRECT. */
function allocator(ctx, capacity) {
  if (ctx.direct) return new AlignedArena(capacity);
  return { alloc: (n) => Buffer.alloc(n), reset() {} };
}

/** A path in the scratch directory with no file at it yet. */
function freshFile(ctx, name) {
  const file = path.join(ctx.dir, name);
  fs.rmSync(file, { force: true });
  return file;
}

async function withDevice(ctx, name, size, fn) {
  const file = freshFile(ctx, name);
  assert.equal(ctx.ring.engine, ctx.engine, 'ring runs on the engine under test');
  const dev = await ctx.ring.open(file, { create: true, size, direct: ctx.direct });
  try {
    return await fn(dev, file);
  } finally {
    await dev.close();
  }
}

function assertSameBytes(actual, expected, what) {
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  assert.fail(`${what}: ${actual.length} vs ${expected.length} bytes, first difference at ${i}`);
}

// Splits len bytes into `parts` buffers (whole blocks under O_DIRECT).
function splitBuffers(alloc, len, parts, unit, int) {
  const blocks = len / unit;
  const cuts = new Set();
  while (cuts.size < Math.min(parts, blocks) - 1) cuts.add(1 + int(blocks - 1));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), blocks];
  const out = [];
  for (let i = 1; i < bounds.length; i++) out.push(alloc((bounds[i] - bounds[i - 1]) * unit));
  return out;
}

/**
 * Random reads, writes, readv, writev, discard and write-zeroes, compared
 * against the same operations done with node:fs on a shadow file. Requests
 * of one batch never overlap a write, so the shadow state is exact.
 */
async function randomAgainstNodeFs(ctx, { ops = 2000, seed = 0x5eed } = {}) {
  const SIZE = 4 << 20;
  const unit = ctx.direct ? ALIGN : 1;
  const rand = rng(seed);
  const int = (n) => Math.floor(rand() * n);
  const pool = Buffer.alloc(1 << 20);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  const mem = allocator(ctx, 4 << 20);
  const shadowPath = freshFile(ctx, 'random.shadow');
  const shadow = fs.openSync(shadowPath, 'w+');
  fs.ftruncateSync(shadow, SIZE);
  try {
    const file = await withDevice(ctx, 'random.img', SIZE, async (dev, file) => {
      let done = 0;
      for (let batchNo = 0; done < ops; batchNo++) {
        mem.reset();
        const want = 1 + int(48);
        const batch = [];
        for (let tries = 0; batch.length < want && tries < 4 * want && done + batch.length < ops; tries++) {
          const roll = rand();
          const kind = roll < 0.35 ? 'write' : roll < 0.7 ? 'read' : roll < 0.8 ? 'writev'
            : roll < 0.9 ? 'readv' : roll < 0.95 ? 'writeZeroes' : 'discard';
          const len = ctx.direct ? ALIGN * (1 + int(16)) : 1 + int(65536);
          const offset = unit * int((SIZE - len) / unit + 1);
          const writes = kind !== 'read' && kind !== 'readv';
          if (batch.some((o) => (o.writes || writes) && offset < o.offset + o.len && o.offset < offset + len)) continue;
          let buffers = null;
          if (kind === 'read' || kind === 'write') buffers = [mem.alloc(len)];
          if (kind === 'readv' || kind === 'writev') buffers = splitBuffers((n) => mem.alloc(n), len, 2 + int(2), unit, int);
          if (kind === 'write' || kind === 'writev') {
            for (const b of buffers) pool.copy(b, 0, int(pool.length - b.length + 1));
          }
          batch.push({ kind, offset, len, writes, buffers });
        }
        let results;
        if (batchNo % 2 === 0) {
          const res = await ctx.ring.submit(batch.map((o) => ({
            op: o.kind, dev, offset: o.offset, length: o.len,
            ...(o.kind === 'read' || o.kind === 'write' ? { buffer: o.buffers[0] } : { buffers: o.buffers }),
          })));
          results = res.map((r) => {
            assert.equal(r.error, undefined);
            return r.bytes;
          });
        } else {
          results = await Promise.all(batch.map((o) => {
            switch (o.kind) {
              case 'read': return dev.read(o.buffers[0], o.offset);
              case 'write': return dev.write(o.buffers[0], o.offset);
              case 'readv': return dev.readv(o.buffers, o.offset);
              case 'writev': return dev.writev(o.buffers, o.offset);
              case 'discard': return dev.discard(o.offset, o.len);
              default: return dev.writeZeroes(o.offset, o.len);
            }
          }));
        }
        for (let i = 0; i < batch.length; i++) {
          const o = batch[i];
          assert.equal(results[i], o.len, `${o.kind} at ${o.offset} length ${o.len} (batch ${batchNo})`);
          if (!o.writes) {
            const expected = Buffer.alloc(o.len);
            fs.readSync(shadow, expected, 0, o.len, o.offset);
            assertSameBytes(Buffer.concat(o.buffers), expected, `${o.kind} at ${o.offset} (batch ${batchNo})`);
          }
        }
        for (const o of batch) {
          if (!o.writes) continue;
          const data = o.buffers ? Buffer.concat(o.buffers) : Buffer.alloc(o.len);
          fs.writeSync(shadow, data, 0, o.len, o.offset);
        }
        done += batch.length;
      }
      return file;
    });
    assertSameBytes(fs.readFileSync(file), fs.readFileSync(shadowPath), 'file vs node:fs shadow');
  } finally {
    fs.closeSync(shadow);
  }
}

/** readv/writev scatter and gather across differently split buffers. */
async function readvWritev(ctx) {
  const mem = allocator(ctx, 64 * ALIGN);
  await withDevice(ctx, 'vec.img', 1 << 20, async (dev, file) => {
    const parts = [mem.alloc(ALIGN).fill(1), mem.alloc(3 * ALIGN).fill(2), mem.alloc(2 * ALIGN).fill(3)];
    assert.equal(await dev.writev(parts, 2 * ALIGN), 6 * ALIGN);
    const into = [mem.alloc(2 * ALIGN), mem.alloc(ALIGN), mem.alloc(3 * ALIGN)];
    assert.equal(await dev.readv(into, 2 * ALIGN), 6 * ALIGN);
    const written = Buffer.concat(parts);
    assertSameBytes(Buffer.concat(into), written, 'readv after writev');
    assertSameBytes(fs.readFileSync(file).subarray(2 * ALIGN, 8 * ALIGN), written, 'node:fs after writev');
  });
}

/** FUA writes and flushes (fdatasync and fsync) succeed in both APIs. */
async function flushAndFua(ctx) {
  const mem = allocator(ctx, 16 * ALIGN);
  await withDevice(ctx, 'flush.img', 1 << 20, async (dev, file) => {
    const a = mem.alloc(2 * ALIGN).fill(0xa5);
    const b = mem.alloc(ALIGN).fill(0x5a);
    assert.equal(await dev.write(a, 0, { fua: true }), 2 * ALIGN);
    assert.equal(await dev.flush(), undefined);
    assert.equal(await dev.flush({ metadata: true }), undefined);
    const res = await ctx.ring.submit([
      { op: 'write', dev, buffer: b, offset: 4 * ALIGN, fua: true },
      { op: 'flush', dev, tag: 'ordered' },
      { op: 'flush', dev, metadata: true },
    ]);
    assert.deepEqual(res.map((r) => [r.bytes, r.error]), [[ALIGN, undefined], [0, undefined], [0, undefined]]);
    const disk = fs.readFileSync(file);
    assertSameBytes(disk.subarray(0, 2 * ALIGN), a, 'FUA write');
    assertSameBytes(disk.subarray(4 * ALIGN, 5 * ALIGN), b, 'FUA write in a batch');
  });
}

/** A read crossing end of file returns what is there; at end of file, 0. */
async function eofShortRead(ctx) {
  const mem = allocator(ctx, 16 * ALIGN);
  // Under O_DIRECT the file still ends mid-block: reads stay aligned.
  const size = 16 * ALIGN + 100;
  await withDevice(ctx, 'eof.img', size, async (dev, file) => {
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = (i * 7) & 0xff;
    fs.writeFileSync(file, content);
    const buf = mem.alloc(4 * ALIGN);
    assert.equal(await dev.read(buf, 15 * ALIGN), ALIGN + 100);
    assertSameBytes(buf.subarray(0, ALIGN + 100), content.subarray(15 * ALIGN), 'short read data');
    assert.equal(await dev.read(mem.alloc(ALIGN), 17 * ALIGN), 0);
    const [r] = await ctx.ring.submit([{ op: 'readv', dev, buffers: [mem.alloc(ALIGN), mem.alloc(2 * ALIGN)], offset: 16 * ALIGN }]);
    assert.equal(r.error, undefined);
    assert.equal(r.bytes, 100);
  });
}

/** 10,000 requests on a ring of depth 64: the rest wait in the userspace queue. */
async function batchBeyondDepth(ctx) {
  const N = 10_000;
  const block = ctx.direct ? ALIGN : 512;
  assert.ok(ctx.ring.depth < N);
  const mem = ctx.direct ? new AlignedArena(N * block) : null;
  const bufs = [];
  for (let i = 0; i < N; i++) {
    const b = mem ? mem.alloc(block) : Buffer.alloc(block);
    b.fill(i & 0xff);
    b.writeUInt32LE(i, 0);
    bufs.push(b);
  }
  await withDevice(ctx, 'many.img', N * block, async (dev, file) => {
    const w = await ctx.ring.submit(bufs.map((buffer, i) => ({ op: 'write', dev, buffer, offset: i * block })));
    assert.ok(w.every((r) => r.bytes === block && !r.error), 'every write completed in full');
    const disk = fs.readFileSync(file);
    for (let i = 0; i < N; i++) assertSameBytes(disk.subarray(i * block, (i + 1) * block), bufs[i], `block ${i}`);
    for (const b of bufs) b.fill(0);
    const r = await ctx.ring.submit(bufs.map((buffer, i) => ({ op: 'read', dev, buffer, offset: i * block })));
    assert.ok(r.every((x) => x.bytes === block && !x.error), 'every read completed in full');
    for (let i = 0; i < N; i++) assert.equal(bufs[i].readUInt32LE(0), i, `read back block ${i}`);
  });
}

/** SIMPLE A, ORDERED B, SIMPLE C on one block: C is last, B waits for A, C for B. */
async function tagsOrdering(ctx) {
  const mem = allocator(ctx, 4 * ALIGN);
  await withDevice(ctx, 'tags.img', 1 << 20, async (dev, file) => {
    const [a, b, c] = [mem.alloc(ALIGN).fill(0xaa), mem.alloc(ALIGN).fill(0xbb), mem.alloc(ALIGN).fill(0xcc)];
    const back = mem.alloc(ALIGN);
    for (let round = 0; round < 20; round++) {
      const offset = round * ALIGN;
      const res = await ctx.ring.submit([
        { op: 'write', dev, buffer: a, offset, tag: 'simple' },
        { op: 'write', dev, buffer: b, offset, tag: 'ordered' },
        { op: 'write', dev, buffer: c, offset, tag: 'simple' },
      ]);
      assert.ok(res.every((r) => r.bytes === ALIGN && !r.error));
      const [ra, rb, rc] = res;
      assert.ok(rb.issued > ra.completed, 'ORDERED B issued after A completed');
      assert.ok(rc.issued > rb.completed, 'SIMPLE C issued after ORDERED B completed');
      assert.equal(await dev.read(back, offset), ALIGN);
      assertSameBytes(back, c, `round ${round}: C wins`);
    }
    assertSameBytes(fs.readFileSync(file).subarray(0, ALIGN), c, 'node:fs sees C');
  });
}

/** Invalid arguments reject before submission; kernel errors come back per request. */
async function badArguments(ctx) {
  const mem = ctx.direct ? new AlignedArena(8 * ALIGN) : null;
  const alloc = (n) => (mem ? mem.alloc(n) : Buffer.alloc(n));
  await withDevice(ctx, 'bad.img', 1 << 20, async (dev, file) => {
    const buf = alloc(ALIGN).fill(0x11);
    await assert.rejects(dev.read('not a buffer', 0), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(dev.read(buf, -1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(dev.read(buf, 1.5), { code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(dev.write(buf, 0, { tag: 'urgent' }), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(dev.readv([], 0), { code: 'ERR_OUT_OF_RANGE' });
    // One bad request rejects the whole batch and submits none of it.
    await assert.rejects(ctx.ring.submit([
      { op: 'write', dev, buffer: buf, offset: 0 },
      { op: 'explode', dev },
    ]), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.ok(fs.readFileSync(file).subarray(0, ALIGN).every((x) => x === 0), 'rejected batch wrote nothing');

    // A device that is not growable refuses writes past its end up front.
    await assert.rejects(dev.write(buf, 2 ** 52), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    // Beyond the file system's largest file (growable device): EFBIG from
    // the kernel, as a BlockIoError on that request only.
    const huge = 2 ** 52;
    const grow = await ctx.ring.open(file, { growable: true, direct: ctx.direct });
    const [bad, good] = await ctx.ring.submit([
      { op: 'write', dev: grow, buffer: buf, offset: huge },
      { op: 'write', dev: grow, buffer: buf, offset: ALIGN },
    ]);
    assert.equal(bad.bytes, 0);
    assert.equal(bad.error?.name, 'BlockIoError');
    assert.equal(bad.error.code, 'EFBIG');
    assert.equal(bad.error.op, 'write');
    assert.equal(bad.error.offset, huge);
    assert.equal(bad.error.path, file);
    assert.deepEqual([good.bytes, good.error], [ALIGN, undefined]);
    // syscall: the write call the engine made (README "Errors").
    await assert.rejects(grow.write(buf, huge), { name: 'BlockIoError', code: 'EFBIG',
      syscall: /^(io_uring_enter\/IORING_OP_WRITE(V|_FIXED)?|io_submit\/IOCB_CMD_PWRITEV?|pwritev2?|mmap)$/ });
    await grow.close();
    if (ctx.direct) {
      // O_DIRECT needs aligned offsets: refused before submission with a
      // RangeError naming the alignment, never a bare EINVAL.
      await assert.rejects(dev.read(buf, 100), { name: 'RangeError', code: 'ERR_MISALIGNED' });
      await assert.rejects(dev.write(buf, ALIGN + 1), { name: 'RangeError', code: 'ERR_MISALIGNED' });
    }
    const ro = await ctx.ring.open(file, { readOnly: true, direct: ctx.direct });
    await assert.rejects(ro.write(buf, 0), { code: 'ERR_READ_ONLY' });
    assert.equal(await ro.read(alloc(ALIGN), ALIGN), ALIGN);
    await ro.close();
    await assert.rejects(ro.read(buf, 0), { code: 'ERR_DEVICE_CLOSED' });
  });
}

/** close() with requests in flight lets every one finish, then refuses new work. */
async function closeWithInflight(ctx) {
  const N = 1000;
  const mem = ctx.direct ? new AlignedArena(N * ALIGN) : null;
  const ring = ctx.makeRing({ depth: 16 });
  assert.equal(ring.engine, ctx.engine);
  const file = freshFile(ctx, 'close.img');
  const dev = await ring.open(file, { create: true, size: N * ALIGN, direct: ctx.direct });
  const bufs = [];
  const pending = [];
  for (let i = 0; i < N; i++) {
    const b = (mem ? mem.alloc(ALIGN) : Buffer.alloc(ALIGN)).fill((i * 13) & 0xff);
    bufs.push(b);
    pending.push(dev.write(b, i * ALIGN));
  }
  const closing = ring.close();
  const results = await Promise.all(pending);
  await closing;
  assert.ok(results.every((n) => n === ALIGN), 'every in-flight write completed');
  assert.equal(ring.closed, true);
  await assert.rejects(dev.read(bufs[0], 0), { code: 'ERR_DEVICE_CLOSED' });
  await assert.rejects(ring.open(file), { code: 'ERR_RING_CLOSED' });
  await assert.rejects(ring.submit([]), { code: 'ERR_RING_CLOSED' });
  const disk = fs.readFileSync(file);
  for (let i = 0; i < N; i++) assertSameBytes(disk.subarray(i * ALIGN, (i + 1) * ALIGN), bufs[i], `block ${i}`);
}

/**
 * Buffers referenced only by in-flight requests survive gc(); a ring dropped
 * with requests in flight still completes them. Needs --expose-gc.
 */
async function gcWithInflight(ctx) {
  // Bun has no --expose-gc; Bun.gc(true) collects synchronously.
  const gc = globalThis.gc ?? (globalThis.Bun ? () => globalThis.Bun.gc(true) : undefined);
  assert.equal(typeof gc, 'function', 'run with --expose-gc');
  const ROUNDS = 4;
  const PER = 256;
  const file = freshFile(ctx, 'gc.img');
  const ring = ctx.makeRing({ depth: 32 });
  const dev = await ring.open(file, { create: true, size: ROUNDS * PER * ALIGN, direct: ctx.direct });
  const writes = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Under O_DIRECT each round gets its own wasm memory, dropped right away.
    const mem = ctx.direct ? new AlignedArena(PER * ALIGN) : null;
    for (let i = 0; i < PER; i++) {
      const n = round * PER + i;
      const b = mem ? mem.alloc(ALIGN) : Buffer.alloc(ALIGN);
      b.fill(n & 0xff);
      b.writeUInt32LE(n, 0);
      writes.push(dev.write(b, n * ALIGN));
    }
    gc();
  }
  gc();
  assert.ok((await Promise.all(writes)).every((n) => n === ALIGN));
  await ring.close();
  const disk = fs.readFileSync(file);
  for (let n = 0; n < ROUNDS * PER; n++) assert.equal(disk.readUInt32LE(n * ALIGN), n, `block ${n}`);

  let finished = 0;
  await (async () => {
    const dropped = ctx.makeRing({ depth: 8 });
    const d = await dropped.open(file, { direct: ctx.direct });
    const mem = allocator(ctx, 64 * ALIGN);
    for (let i = 0; i < 64; i++) {
      const b = mem.alloc(ALIGN);
      d.read(b, i * ALIGN).then((n) => {
        assert.equal(n, ALIGN);
        assert.equal(b.readUInt32LE(0), i);
        finished++;
      });
    }
  })();
  for (let spins = 0; finished < 64 && spins < 5000; spins++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(finished, 64, 'requests of a dropped ring complete');
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Ring } = require(workerData.index);
(async () => {
  const ring = new Ring({ engine: workerData.engine, depth: 32 });
  const dev = await ring.open(workerData.file, { direct: workerData.direct });
  const mem = new WebAssembly.Memory({ initial: 64 });
  let told = false;
  for (let round = 0; ; round++) {
    const ps = [];
    for (let i = 0; i < 256; i++) {
      const b = Buffer.from(mem.buffer, (i % 256) * 4096, 4096);
      ps.push(i % 2 ? dev.read(b, i * 4096) : dev.write(b, i * 4096));
    }
    if (!told) { parentPort.postMessage(ring.engine); told = true; }
    await Promise.all(ps);
  }
})();
`;

function openFdsOn(file) {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** Terminating a worker with I/O in flight: no crash, every device closed. */
async function workerTerminatedMidIo(ctx) {
  const file = freshFile(ctx, 'worker.img');
  fs.writeFileSync(file, Buffer.alloc(256 * ALIGN));
  for (let round = 0; round < 3; round++) {
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { index: INDEX, engine: ctx.requested, file, direct: ctx.direct },
    });
    const [engine] = await once(w, 'message');
    assert.equal(engine, ctx.engine);
    await w.terminate();
  }
  // Deno resolves terminate() before the worker's cleanup hooks have run.
  for (let waited = 0; openFdsOn(file) && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openFdsOn(file), 0, 'terminated workers closed their devices');
  // The engine still works in this thread afterwards.
  const ring = ctx.makeRing({ depth: 8 });
  try {
    const dev = await ring.open(file, { direct: ctx.direct });
    const b = ctx.direct ? new AlignedArena(ALIGN).alloc(ALIGN) : Buffer.alloc(ALIGN);
    assert.equal(await dev.read(b, 0), ALIGN);
  } finally {
    await ring.close();
  }
}

/** Checks that use the shared ring only: the core of the suite. */
export const CORE_CHECKS = [
  ['random I/O matches node:fs on a shadow copy', randomAgainstNodeFs],
  ['readv and writev', readvWritev],
  ['flush and FUA', flushAndFua],
  ['short read at end of file', eofShortRead],
  ['batch larger than depth', batchBeyondDepth],
  ['tags: SIMPLE A, ORDERED B, SIMPLE C on one block, C wins', tagsOrdering],
  ['bad arguments and kernel errors', badArguments],
];

/** Checks that create, drop and tear down rings of their own. */
export const LIFECYCLE_CHECKS = [
  ['close with requests in flight', closeWithInflight],
  ['GC with buffers in flight', gcWithInflight],
  ['worker terminated mid-I/O', workerTerminatedMidIo],
];

export const SHARED_RING_OPTIONS = { depth: 64, trace: true };

// Child-process mode for the fallback tests:
//   node --expose-gc core-checks.mjs --engine auto --expect libaio --dir D
//     [--disable-io-uring] [--exhaust-aio] [--lifecycle]
// The sysctl switches hold only while the rings are created (and are
// restored right after), so the window other processes see stays short.
// Prints one JSON line: { engineInfo, completions, libaioError?, ran }. Runs
// under Bun and Deno too (test/other-runtimes.test.ts).
async function main(argv) {
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i < 0 ? undefined : argv[i + 1];
  };
  // require, not import: Deno loads an imported .js outside node_modules as ESM.
  const { Ring } = createRequire(import.meta.url)(INDEX);
  const requested = arg('--engine') ?? 'auto';
  const expect = arg('--expect');
  const dir = arg('--dir');
  assert.ok(expect && dir, 'usage: --expect ENGINE --dir DIR');
  const sysctls = [];
  if (argv.includes('--disable-io-uring')) sysctls.push(['/proc/sys/kernel/io_uring_disabled', '2']);
  if (argv.includes('--exhaust-aio')) sysctls.push(['/proc/sys/fs/aio-max-nr', '0']);
  const out = { ran: [] };
  const rings = {};
  withSysctls(sysctls, () => {
    if (argv.includes('--exhaust-aio')) {
      try {
        new Ring({ engine: 'libaio' }).close();
      } catch (e) {
        out.libaioError = { code: e.code, syscall: e.syscall, message: e.message };
      }
    }
    rings.shared = new Ring({ engine: requested, ...SHARED_RING_OPTIONS });
  });
  out.engineInfo = rings.shared.engineInfo;
  out.completions = rings.shared.completions;
  for (const direct of [false, true]) {
    const ctx = {
      ring: rings.shared, engine: expect, requested, direct, dir,
      makeRing: (options) => new Ring({ engine: requested, ...options }),
    };
    const checks = argv.includes('--lifecycle') ? [...CORE_CHECKS, ...LIFECYCLE_CHECKS] : CORE_CHECKS;
    for (const [name, run] of checks) {
      await run(ctx);
      out.ran.push(`${name}${direct ? ' (O_DIRECT)' : ''}`);
    }
  }
  await rings.shared.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function withSysctls(settings, fn) {
  const saved = [];
  try {
    for (const [file, value] of settings) {
      saved.push([file, fs.readFileSync(file, 'utf8')]);
      fs.writeFileSync(file, value);
    }
    fn();
  } finally {
    for (const [file, value] of saved.reverse()) fs.writeFileSync(file, value);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
