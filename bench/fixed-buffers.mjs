// O_DIRECT 4 KiB random-read IOPS at depth 32 through the raw interface,
// with io_uring registered (fixed) buffers and without, interleaved rounds.
// Usage: node bench/fixed-buffers.mjs [--size MiB] [--seconds N] [--rounds N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Ring, OP, BufferPool } = require('../dist/lib/index.js');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SIZE = arg('size', 256) << 20;
const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 3);
const DEPTH = 32;
const BS = 4096;

const file = path.join(os.tmpdir(), `blockring-fixed-${process.pid}.img`);
fs.writeFileSync(file, '');
const fd = fs.openSync(file, 'r+');
const chunk = Buffer.alloc(1 << 20, 0x5a);
for (let off = 0; off < SIZE; off += chunk.length) fs.writeSync(fd, chunk, 0, chunk.length, off);
fs.fsyncSync(fd);
fs.closeSync(fd);

async function run(fixed) {
  const ring = new Ring({ depth: DEPTH });
  const dev = await ring.open(file, { direct: true });
  const pool = new BufferPool(DEPTH, BS);
  const registered = ring.raw.registerBuffers(pool.buffers, { fixed });
  const raw = ring.raw;
  const blocks = SIZE / BS;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % blocks) * BS;
  let done = 0;
  let stop = false;
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => {
    raw.onComplete = (cq, count) => {
      for (let i = 0; i < count; i++) if (cq[i * 4 + 1] !== BS) throw new Error(`bad result ${cq[i * 4 + 1]}`);
      done += count;
      if (stop) {
        if (ring.raw && done === submitted) resolve();
        return;
      }
      for (let i = 0; i < count; i++) {
        const slot = cq[i * 4];
        raw.prepare(i, slot, OP.read, dev, slot, 0, BS, rand());
      }
      raw.submit(count);
      submitted += count;
    };
    let submitted = 0;
    for (let i = 0; i < DEPTH; i++) raw.prepare(i, i, OP.read, dev, i, 0, BS, rand());
    raw.submit(DEPTH);
    submitted = DEPTH;
    setTimeout(() => { stop = true; }, SECONDS * 1000);
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await ring.close();
  return { registered, iops: done / secs };
}

const rows = { fixed: [], plain: [] };
for (let r = 0; r < ROUNDS; r++) {
  const a = await run(true);
  const b = await run(false);
  if (!a.registered) console.log('note: kernel registration of fixed buffers failed; both runs used plain buffers');
  rows.fixed.push(a.iops);
  rows.plain.push(b.iops);
  console.log(`round ${r + 1}: fixed ${a.iops.toFixed(0)} IOPS, plain ${b.iops.toFixed(0)} IOPS, ratio ${(a.iops / b.iops).toFixed(3)}`);
}
const median = (v) => v.slice().sort((x, y) => x - y)[Math.floor(v.length / 2)];
console.log(`median: fixed ${median(rows.fixed).toFixed(0)} IOPS, plain ${median(rows.plain).toFixed(0)} IOPS, ratio ${(median(rows.fixed) / median(rows.plain)).toFixed(3)}`);
fs.unlinkSync(file);
