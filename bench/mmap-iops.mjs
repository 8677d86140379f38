// 4 KiB random reads from the page cache at a fixed depth: the mmap engine,
// the io_uring engine and node:fs (fs.promises FileHandle.read), one after
// the other in one process, on one file that is fully cached first.
//
// Contenders take turns for --rounds rounds (after one warm-up round) so
// that load from elsewhere on the machine hits them alike; the median is
// reported.
//
//   npm run rebuild && node bench/mmap-iops.mjs [--size-mib 256] [--depth 32] [--seconds 2] [--rounds 3] [--file path]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Ring } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '256' },
    depth: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    file: { type: 'string' },
  },
});
const SIZE = Number(values['size-mib']) << 20;
const DEPTH = Number(values.depth);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BLOCK = 4096;
const BLOCKS = SIZE / BLOCK;
const dir = values.file ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-bench-'));
const file = values.file ?? path.join(dir, 'iops.img');

function prepare() {
  if (!fs.existsSync(file) || fs.statSync(file).size < SIZE) {
    const fd = fs.openSync(file, 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < SIZE; off += chunk.length) {
      for (let i = 0; i < chunk.length; i += BLOCK) chunk.writeUInt32LE((off + i) / BLOCK, i);
      fs.writeSync(fd, chunk, 0, chunk.length, off);
    }
    fs.closeSync(fd);
  }
  // Read it all once so every request below is a page-cache hit.
  const fd = fs.openSync(file, 'r');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < SIZE; off += chunk.length) fs.readSync(fd, chunk, 0, chunk.length, off);
  fs.closeSync(fd);
}

// xorshift32: cheap, and the same sequence for every contender.
function makeRandom(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % BLOCKS;
  };
}

// DEPTH loops, each with its own buffer, each issuing the next read when
// its previous one completes. Returns IOPS; checks every block it read.
async function run(read) {
  let ops = 0;
  let bad = 0;
  const end = performance.now() + SECONDS * 1000;
  const loops = [];
  for (let q = 0; q < DEPTH; q++) {
    const buf = Buffer.alloc(BLOCK);
    const next = makeRandom(q + 1);
    loops.push((async () => {
      while (performance.now() < end) {
        const block = next();
        const n = await read(buf, block * BLOCK);
        if (n !== BLOCK || buf.readUInt32LE(0) !== block) bad++;
        ops++;
      }
    })());
  }
  const start = performance.now();
  await Promise.all(loops);
  const secs = (performance.now() - start) / 1000;
  if (bad) throw new Error(`${bad} reads returned wrong data`);
  return ops / secs;
}

async function ringContender(engine) {
  const ring = new Ring({ engine, depth: DEPTH });
  const dev = await ring.open(file, { readOnly: true });
  try {
    return await run((buf, off) => dev.read(buf, off));
  } finally {
    await ring.close();
  }
}

async function fsContender() {
  const fh = await fs.promises.open(file, 'r');
  try {
    return await run(async (buf, off) => (await fh.read(buf, 0, BLOCK, off)).bytesRead);
  } finally {
    await fh.close();
  }
}

prepare();
console.log(`4 KiB random reads, page cache, ${SIZE >> 20} MiB file, depth ${DEPTH}, ${SECONDS}s x ${ROUNDS} rounds each`);
console.log(`node ${process.version}, ${os.cpus().length} CPUs, loadavg ${os.loadavg()[0].toFixed(2)}, kernel ${os.release()}`);
const contenders = [
  ['mmap engine', () => ringContender('mmap')],
  ['io_uring engine', () => ringContender('io_uring')],
  ['node:fs FileHandle.read', fsContender],
];
const samples = contenders.map(() => []);
for (let round = -1; round < ROUNDS; round++) {
  for (let i = 0; i < contenders.length; i++) {
    const iops = await contenders[i][1]();
    if (round >= 0) samples[i].push(iops); // round -1 warms up the JIT and the mapping
  }
}
const fmt = (n) => Math.round(n).toLocaleString('en-US');
for (let i = 0; i < contenders.length; i++) {
  const sorted = [...samples[i]].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(`${contenders[i][0].padEnd(26)} ${fmt(median).padStart(10)} IOPS median  (${samples[i].map(fmt).join(', ')})`);
}
if (dir) fs.rmSync(dir, { recursive: true, force: true });
