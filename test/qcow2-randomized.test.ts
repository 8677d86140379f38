// 10,000 random reads, writes, discards and write-zeroes (1 B to 1 MiB,
// byte-granular and sector-aligned, single and batched, many allocating at
// once) on an overlay made by `qemu-img create -f qcow2 -b base.raw -F raw`,
// checked against a shadow copy; then qemu-img check must be clean,
// qemu-img compare must find the overlay identical to the shadow, and the
// base must be unchanged.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Ring, type BatchRequest } from '../dist/lib/index.js';
import { expectCheckClean, expectSameAsRaw, qemuImg } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

const SPAN = 48 << 20;
const OPS = 10_000;
let t: ReturnType<typeof tempDir>;

beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

type Kind = 'read' | 'write' | 'discard' | 'writeZeroes';
interface Op {
  kind: Kind;
  offset: number;
  size: number;
}

it('matches a shadow copy over 10,000 random requests and passes qemu-img check and compare', async () => {
  const seed = Number(process.env.BLOCKRING_SEED ?? 0x9c02);
  const rand = rng(seed);
  const base = path.join(t.dir, 'base.raw');
  const overlay = path.join(t.dir, 'overlay.qcow2');
  const shadowPath = path.join(t.dir, 'shadow.raw');
  // Base content: a seeded pattern, different in every 512-byte sector.
  const content = Buffer.alloc(SPAN);
  for (let i = 0; i < SPAN; i += 512) content.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  fs.writeFileSync(base, content);
  fs.writeFileSync(shadowPath, content);
  const baseHash = crypto.createHash('sha256').update(content).digest('hex');
  expect(qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay).status).toBe(0);

  const shadow = fs.openSync(shadowPath, 'r+');
  const ring = new Ring({ depth: 64 });
  const dev = await ring.open(overlay, { format: 'qcow2', cacheSize: 64 << 10 }); // small cache: evictions happen
  expect(dev.size).toBe(SPAN);
  expect(dev.backing?.path).toBe(base);

  const next = (): Op => {
    let size = Math.max(1, Math.floor(Math.exp(rand() * Math.log(1 << 20))));
    const aligned = rand() < 0.5;
    if (aligned) size = Math.max(512, size - (size % 512));
    let offset = Math.floor(rand() * (SPAN - size));
    if (aligned) offset -= offset % 512;
    const p = rand();
    const kind: Kind = p < 0.45 ? 'write' : p < 0.8 ? 'read' : p < 0.9 ? 'discard' : 'writeZeroes';
    return { kind, offset, size };
  };
  let stamp = (rand() * 0x100000000) >>> 0;
  const fill = (buf: Buffer): void => {
    buf.fill((rand() * 256) | 0);
    for (let i = 0; i + 4 <= buf.length; i += 509) buf.writeUInt32LE((stamp = (stamp * 1664525 + 1013904223) >>> 0), i);
  };
  const apply = (op: Op, buf: Buffer | null): void => {
    fs.writeSync(shadow, buf ?? Buffer.alloc(op.size), 0, op.size, op.offset);
  };
  const verify = (op: Op, buf: Buffer, got: number): void => {
    const want = Buffer.alloc(op.size);
    fs.readSync(shadow, want, 0, op.size, op.offset);
    expect(got).toBe(op.size);
    if (!buf.equals(want)) throw new Error(`content mismatch at ${op.offset} size ${op.size} (seed ${seed})`);
  };

  let done = 0;
  let batches = 0;
  let sameCluster = 0;
  while (done < OPS) {
    const roll = rand();
    if (roll < 0.4) {
      const op = next();
      const buf = Buffer.alloc(op.kind === 'read' || op.kind === 'write' ? op.size : 0);
      if (op.kind === 'write') {
        fill(buf);
        expect(await dev.write(buf, op.offset)).toBe(op.size);
        apply(op, buf);
      } else if (op.kind === 'read') {
        verify(op, buf, await dev.read(buf, op.offset));
      } else {
        expect(await dev[op.kind](op.offset, op.size)).toBe(op.size);
        apply(op, null);
      }
      done++;
      continue;
    }
    // A batch of non-overlapping requests in flight together. Sometimes they
    // are small writes into one (likely unallocated) cluster.
    const ops: Op[] = [];
    if (roll < 0.5) {
      const cluster = Math.floor(rand() * (SPAN / 65536)) * 65536;
      for (let k = 0; k < 4; k++) ops.push({ kind: 'write', offset: cluster + k * 16384 + Math.floor(rand() * 8192), size: 1 + Math.floor(rand() * 8000) });
      sameCluster++;
    } else {
      const want = 2 + Math.floor(rand() * 31);
      while (ops.length < want) {
        const op = next();
        if (ops.some((o) => o.offset < op.offset + op.size && op.offset < o.offset + o.size)) break;
        ops.push(op);
      }
    }
    const bufs = ops.map((op) => {
      const b = Buffer.alloc(op.kind === 'read' || op.kind === 'write' ? op.size : 0);
      if (op.kind === 'write') fill(b);
      return b;
    });
    const reqs: BatchRequest[] = ops.map((op, i) =>
      op.kind === 'read' || op.kind === 'write'
        ? { op: op.kind, dev, buffer: bufs[i]!, offset: op.offset }
        : { op: op.kind, dev, offset: op.offset, length: op.size });
    const results = await ring.submit(reqs);
    batches++;
    ops.forEach((op, i) => {
      const r = results[i]!;
      expect(r.error).toBeUndefined();
      if (op.kind === 'read') verify(op, bufs[i]!, r.bytes);
      else {
        expect(r.bytes).toBe(op.size);
        apply(op, op.kind === 'write' ? bufs[i]! : null);
      }
    });
    done += ops.length;
    if (batches % 100 === 0) await dev.flush();
  }
  expect(batches).toBeGreaterThan(100);
  expect(sameCluster).toBeGreaterThan(10);
  // A whole-image read through blockring, then the real tools.
  const all = Buffer.alloc(SPAN);
  await dev.read(all, 0);
  fs.fsyncSync(shadow);
  if (!all.equals(fs.readFileSync(shadowPath))) throw new Error(`final image differs from the shadow (seed ${seed})`);
  await ring.close();
  fs.closeSync(shadow);

  expectCheckClean(overlay);
  expectSameAsRaw(overlay, shadowPath);
  const after = crypto.createHash('sha256').update(fs.readFileSync(base)).digest('hex');
  expect(after).toBe(baseHash);
}, 300_000);
