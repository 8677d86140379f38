// Buffers stay pinned while in flight; idle rings do not hold the process;
// exits, worker termination and spawned children are clean.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

const fixtures = path.join(__dirname, 'fixtures');
let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

declare const gc: () => void;

function fdTargets(): string[] {
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
}
const ringFds = (): number => fdTargets().filter((l) => /io_uring|eventfd/.test(l)).length;

it('keeps buffers alive while in flight when JS drops every reference and GC runs', async () => {
  expect(typeof gc).toBe('function');
  const ring = new Ring({ depth: 8 });
  const file = path.join(t.dir, 'gc.img');
  const dev = await ring.open(file, { create: true, size: 4096 * 512 });
  // Fire-and-forget writes of fresh buffers: only the ring references them.
  const results: Promise<number>[] = [];
  for (let i = 0; i < 512; i++) results.push(dev.write(Buffer.alloc(4096, (i * 13) & 255), i * 4096));
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(results);
  const back = fs.readFileSync(file);
  for (let i = 0; i < 512; i++) {
    const block = back.subarray(i * 4096, (i + 1) * 4096);
    expect(block.every((b) => b === ((i * 13) & 255))).toBe(true);
  }
  // Reads into dropped buffers must not scribble on reused memory: read into
  // buffers, drop them, GC, then check nothing crashed and the ring is sane.
  let pending = 0;
  for (let i = 0; i < 256; i++) {
    pending++;
    void dev.read(Buffer.alloc(4096), i * 4096).then(() => pending--);
  }
  gc();
  while (pending) await new Promise((r) => setImmediate(r));
  await ring.close();
});

it('an unreferenced ring is collected and its fds closed', async () => {
  const before = ringFds();
  await (async () => {
    const ring = new Ring({ depth: 8 });
    const dev = await ring.open(path.join(t.dir, 'gc2.img'), { create: true, size: 4096 });
    await dev.read(Buffer.alloc(4096), 0);
  })();
  expect(ringFds()).toBe(before + 2);
  for (let i = 0; i < 10 && ringFds() > before; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(ringFds()).toBe(before);
});

it('ring and eventfd fds are close-on-exec: a spawned child inherits none', async () => {
  const ring = new Ring({ depth: 8 });
  const dev = await ring.open(path.join(t.dir, 'cloexec.img'), { create: true, size: 4096 });
  expect(ringFds()).toBeGreaterThanOrEqual(2);
  // A shell, not node: node opens eventfds of its own.
  const child = spawnSync('/bin/sh', ['-c', 'for f in /proc/$$/fd/*; do readlink "$f"; done'], { encoding: 'utf8' });
  const targets = child.stdout.split('\n').filter(Boolean);
  expect(targets.length).toBeGreaterThan(0);
  expect(targets.filter((l) => /io_uring|eventfd|cloexec\.img/.test(l))).toEqual([]);
  await dev.close();
  await ring.close();
});

it('an idle ring lets the process exit', () => {
  const r = spawnSync(process.execPath, [path.join(fixtures, 'exit-inflight.js'), 'idle', path.join(t.dir, 'idle.img')], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('idle');
});

it('process.exit with requests in flight exits cleanly', () => {
  const r = spawnSync(process.execPath, [path.join(fixtures, 'exit-inflight.js'), 'exit', path.join(t.dir, 'exit.img')], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(7);
});

it('an exception thrown by a completion handler is an ordinary uncaught exception', () => {
  const r = spawnSync(process.execPath, [path.join(fixtures, 'exit-inflight.js'), 'throw', path.join(t.dir, 'throw.img')], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(1);
  expect(r.stderr).toContain('boom from completion');
});

it.each(['uv-poll', 'thread'])('4 worker threads with their own rings, terminated mid-I/O, leave no fds behind (completions: %s)', async (completions) => {
  const before = fdTargets().length;
  const beforeRing = ringFds();
  const env = { ...process.env, BLOCKRING_COMPLETIONS: completions };
  const workers = Array.from({ length: 4 }, (_, i) =>
    new Worker(path.join(fixtures, 'worker-io.js'), { env, workerData: { file: path.join(t.dir, `${completions}-w${i}.img`) } }));
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  })));
  expect(ringFds()).toBeGreaterThanOrEqual(beforeRing + 8);
  const codes = await Promise.all(workers.map((w) => w.terminate()));
  expect(codes).toEqual([1, 1, 1, 1]);
  // Worker teardown closes its files asynchronously in libuv; give it a moment.
  for (let i = 0; i < 50 && fdTargets().length > before; i++) await new Promise((r) => setTimeout(r, 20));
  expect(ringFds()).toBe(beforeRing);
  expect(fdTargets().length).toBeLessThanOrEqual(before);
});

it('close waits for in-flight requests, and closed objects reject with stable codes', async () => {
  const ring = new Ring({ depth: 4 });
  const dev = await ring.open(path.join(t.dir, 'close.img'), { create: true, size: 1 << 20 });
  const writes = Array.from({ length: 200 }, (_, i) => dev.write(Buffer.alloc(4096, 9), (i % 256) * 4096));
  const closed = dev.close();
  await expect(dev.read(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED', name: 'BlockringError' });
  await closed;
  expect((await Promise.all(writes)).every((n) => n === 4096)).toBe(true);
  expect(dev.closed).toBe(true);
  await expect(ring.submit([{ op: 'read', dev, buffer: Buffer.alloc(1), offset: 0 }])).rejects.toThrow(TypeError);
  const dev2 = await ring.open(path.join(t.dir, 'close.img'));
  const more = Array.from({ length: 100 }, (_, i) => dev2.read(Buffer.alloc(4096), i * 4096));
  await ring.close();
  expect((await Promise.all(more)).every((n) => n === 4096)).toBe(true);
  await expect(ring.open(path.join(t.dir, 'close.img'))).rejects.toMatchObject({ code: 'ERR_RING_CLOSED' });
  await expect(dev2.read(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED' });
  await ring.close(); // idempotent
});

it('buffers stay pinned when the caller empties its own iovec array right after the call', async () => {
  const ring = new Ring({ depth: 2 });
  const file = path.join(t.dir, 'iov-pin.img');
  const dev = await ring.open(file, { create: true, size: 256 * 8192 });
  const pending: Promise<number>[] = [];
  for (let i = 0; i < 256; i++) {
    const bufs = [Buffer.alloc(4096, i & 255), Buffer.alloc(4096, (i + 1) & 255)];
    pending.push(dev.writev(bufs, i * 8192));
    bufs.length = 0; // the caller reuses or drops its array
  }
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  expect((await Promise.all(pending)).every((n) => n === 8192)).toBe(true);
  const back = fs.readFileSync(file);
  for (let i = 0; i < 256; i++) {
    expect(back.subarray(i * 8192, i * 8192 + 4096).every((b) => b === (i & 255))).toBe(true);
    expect(back.subarray(i * 8192 + 4096, (i + 1) * 8192).every((b) => b === ((i + 1) & 255))).toBe(true);
  }
  await ring.close();
});

it('close() does not hang after a request was refused, and resize finishes before close', async () => {
  const ring = new Ring({ depth: 4 });
  const file = path.join(t.dir, 'refused.img');
  const dev = await ring.open(file, { create: true, size: 4096 });
  const refused = dev.write(Buffer.alloc(8192), 0).catch((e: unknown) => e);
  await dev.close();
  expect(await refused).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  const dev2 = await ring.open(file);
  const resized = dev2.resize(65536);
  await Promise.all([resized, dev2.close()]);
  expect(fs.statSync(file).size).toBe(65536);
  const dev3 = await ring.open(file);
  const closing = dev3.close();
  await expect(dev3.resize(4096)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED' });
  await closing;
  expect(fs.statSync(file).size).toBe(65536);
  await ring.close();
});
