// O_DIRECT 4 KiB random-read IOPS at depth 32, per engine, through the raw
// API (ring.raw): one registered buffer, records in typed arrays, each
// completion immediately resubmitted so 32 reads stay in flight.
//
//   node bench/engines-iops.mjs [--seconds 5] [--threads 4] [--file /path/to/256MiB.img]
//
// Without --file it creates (and removes) a 256 MiB file in the OS temp
// dir, written in full so reads hit allocated blocks, not holes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { OP, Ring } from '../dist/lib/index.js';

const DEPTH = 32;
const BLOCK = 4096;
const SIZE = 256 << 20;
const ENGINES = ['io_uring', 'libaio', 'threads'];

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args[i + 1];
};
const seconds = Number(opt('--seconds', '5'));
const threads = Number(opt('--threads', '4'));  // threads engine pool size

function makeFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-bench-'));
  const file = path.join(dir, 'bench.img');
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < SIZE; off += chunk.length) {
    chunk.fill(off >>> 20);
    fs.writeSync(fd, chunk, 0, chunk.length, off);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// Page-aligned memory: V8 maps wasm memory at a page boundary.
const memory = new WebAssembly.Memory({ initial: Math.ceil((DEPTH * BLOCK) / 65536) });
const buffer = Buffer.from(memory.buffer, 0, DEPTH * BLOCK);

let seed = 12345;
function randomBlock() {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed % (SIZE / BLOCK)) * BLOCK;
}

async function measure(engine, file) {
  const ring = new Ring({ engine, depth: DEPTH, threads });
  const dev = await ring.open(file, { direct: true, readOnly: true });
  const raw = ring.raw;
  raw.registerBuffers([buffer]);
  let done = 0;
  let errors = 0;
  let stopping = false;
  let inflight = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  raw.onComplete = (cq, count) => {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const slot = cq[i * 4];
      if (cq[i * 4 + 1] !== BLOCK) errors++;
      done++;
      inflight--;
      if (stopping) continue;
      raw.prepare(n++, slot, OP.read, dev, 0, slot * BLOCK, BLOCK, randomBlock());
      inflight++;
    }
    if (n) raw.submit(n);
    if (stopping && inflight === 0) finish();
  };
  for (let slot = 0; slot < DEPTH; slot++) raw.prepare(slot, slot, OP.read, dev, 0, slot * BLOCK, BLOCK, randomBlock());
  const start = process.hrtime.bigint();
  raw.submit(DEPTH);
  inflight = DEPTH;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  stopping = true;
  await finished;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const info = ring.engineInfo;
  await ring.close();
  return { engine: info.name, iops: Math.round(done / elapsed), reads: done, errors, seconds: elapsed };
}

const given = opt('--file', null);
const target = given ? { file: given, cleanup() {} } : makeFile();
try {
  console.log(`O_DIRECT 4 KiB random reads, depth ${DEPTH}, ${seconds} s per engine, ${threads} threads, ${path.basename(target.file)} (${SIZE >> 20} MiB)`);
  console.log(`kernel ${os.release()}, ${os.cpus().length} CPUs, node ${process.version}`);
  for (const engine of ENGINES) {
    const r = await measure(engine, target.file);
    console.log(`${r.engine.padEnd(9)} ${String(r.iops).padStart(8)} IOPS  (${r.reads} reads, ${r.errors} errors, ${r.seconds.toFixed(2)} s)`);
  }
} finally {
  target.cleanup();
}
