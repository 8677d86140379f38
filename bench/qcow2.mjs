// qcow2 against its peers, interleaved rounds (ratios within one run, since
// the machine is shared):
//  1. 4 KiB random reads at depth 32, Promise API, on a fully allocated
//     qcow2 vs the same data as a raw file (page cache, then O_DIRECT);
//  2. 4 KiB writes at depth 32 into unallocated clusters (one per cluster,
//     random order, then a flush) vs `qemu-img bench -w -d 32 -s 4096
//     -S 65536` on the same kind of fresh image (no backing, 64 KiB clusters).
//     Timed as qemu-img bench times itself: from the first write to the last
//     write's completion. Its final flush (--flush-interval = count) is
//     issued when the last request completes, but "Run completed" is taken
//     before that flush finishes (strace: the message precedes the
//     fdatasync and the L2/refcount writes), so the flush here is after the
//     timed window too; what write + flush takes is printed as well.
//
//   flock /tmp/blockring-bench.lock node bench/qcow2.mjs [--seconds 2] [--rounds 5] [--writes-only]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { allocAligned, createImage, Ring } from '../dist/lib/index.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args[i + 1];
};
const seconds = Number(opt('--seconds', '2'));
const rounds = Number(opt('--rounds', '5'));
const writesOnly = args.includes('--writes-only'); // only the allocating-write row
const DEPTH = 32;
const BS = 4096;
const SIZE = 256 << 20;
const WRITES = 8192; // one per 64 KiB cluster: 512 MiB virtual

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-qcow2-bench-'));
const rawPath = path.join(dir, 'data.raw');
const qPath = path.join(dir, 'data.qcow2');
if (!writesOnly) {
  const chunk = Buffer.alloc(1 << 20);
  const fd = fs.openSync(rawPath, 'w');
  for (let off = 0; off < SIZE; off += chunk.length) {
    chunk.fill((off >>> 20) + 1);
    fs.writeSync(fd, chunk, 0, chunk.length, off);
  }
  fs.closeSync(fd);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', rawPath, qPath]);
}

let seed = 12345;
const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 0x100000000);

async function randread(ring, dev, direct) {
  const bufs = Array.from({ length: DEPTH }, () => (direct ? allocAligned(BS) : Buffer.alloc(BS)));
  const blocks = SIZE / BS;
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(bufs.map(async (b) => {
    while (performance.now() < end) {
      await dev.read(b, Math.floor(rand() * blocks) * BS);
      n++;
    }
  }));
  return n / seconds;
}

async function blockringWrites() {
  const img = path.join(dir, 'w.qcow2');
  fs.rmSync(img, { force: true });
  await createImage(img, { format: 'qcow2', size: WRITES * 65536 });
  const ring = new Ring({ depth: 64 });
  const dev = await ring.open(img, { format: 'qcow2' });
  const order = Array.from({ length: WRITES }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const buf = Buffer.alloc(BS, 0x5a);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: DEPTH }, async () => {
    while (next < WRITES) await dev.write(buf, order[next++] * 65536);
  }));
  const t1 = performance.now();
  await dev.flush();
  const t2 = performance.now();
  await ring.close();
  return { iops: WRITES / ((t1 - t0) / 1000), withFlush: WRITES / ((t2 - t0) / 1000) };
}

function qemuWrites() {
  const img = path.join(dir, 'qw.qcow2');
  fs.rmSync(img, { force: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, String(WRITES * 65536)]);
  const out = execFileSync('qemu-img', ['bench', '-w', '-f', 'qcow2', '-d', String(DEPTH), '-s', String(BS), '-S', '65536',
    '-c', String(WRITES), '--flush-interval', String(WRITES), img], { encoding: 'utf8' });
  const secs = Number(/Run completed in ([\d.]+) seconds/.exec(out)?.[1]);
  return WRITES / secs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
let withFlush = null;
for (const direct of writesOnly ? [] : [false, true]) {
  const ring = new Ring({ depth: 64 });
  const raw = await ring.open(rawPath, { direct, readOnly: true });
  const q = await ring.open(qPath, { format: 'qcow2', direct, readOnly: true });
  await randread(ring, raw, direct); // warm-up
  await randread(ring, q, direct);
  const r = [], c = [];
  for (let i = 0; i < rounds; i++) {
    r.push(await randread(ring, raw, direct));
    c.push(await randread(ring, q, direct));
  }
  await ring.close();
  rows.push([`4k randread depth 32, ${direct ? 'O_DIRECT' : 'page cache'}`, 'raw file', median(r), median(c), c.map((x, i) => (x / r[i]).toFixed(2)).join(' ')]);
}
{
  const b = [], q = [];
  await blockringWrites();
  qemuWrites();
  for (let i = 0; i < rounds; i++) {
    b.push(await blockringWrites());
    q.push(qemuWrites());
  }
  rows.push(['4k writes into unallocated clusters, depth 32', 'qemu-img bench -w', median(q), median(b.map((x) => x.iops)),
    b.map((x, i) => (x.iops / q[i]).toFixed(2)).join(' ')]);
  withFlush = b.map((x) => Math.round(x.withFlush).toLocaleString('en')).join(' ');
}
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${rounds} interleaved rounds of ${seconds}s (reads); ${WRITES} writes per round\n`);
console.log('| workload | peer | peer IOPS (median) | qcow2 IOPS (median) | qcow2 ÷ peer per round |');
console.log('|---|---|--:|--:|---|');
for (const [w, peer, p, mine, per] of rows) {
  console.log(`| ${w} | ${peer} | ${Math.round(p).toLocaleString('en')} | ${Math.round(mine).toLocaleString('en')} | ${per} |`);
}
if (withFlush) console.log(`\nqcow2 writes including the final flush (outside qemu-img bench's window), IOPS per round: ${withFlush}`);
