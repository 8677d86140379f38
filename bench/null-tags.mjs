// Requests/s of the library itself (null engine, latency 0 by default, raw API) with
// all-SIMPLE traffic (the scheduler's fast path) and with one ORDERED
// request every N. Usage:
//   node bench/null-tags.mjs [--seconds 3] [--depth 64] [--every 64] [--repeat 3] [--latency 0]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { OP, Ring, TAG } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    depth: { type: 'string', default: '64' },
    every: { type: 'string', default: '64' },
    repeat: { type: 'string', default: '3' },
    latency: { type: 'string', default: '0' },
  },
});
const seconds = Number(values.seconds);
const depth = Number(values.depth);
const every = Number(values.every);
const repeat = Number(values.repeat);
const latencyUs = Number(values.latency);
const BLOCK = 4096;

async function measure(file, orderedEvery) {
  const ring = new Ring({ engine: 'null', depth, nullEngine: { latencyUs } });
  const dev = await ring.open(file);
  const raw = ring.raw;
  raw.registerBuffers([Buffer.alloc(depth * BLOCK)]);
  let next = 0;
  let completed = 0;
  let stopping = false;
  const submit = (n) => {
    for (let s = 0; s < n; s++) {
      const i = next++;
      const tag = orderedEvery && i % orderedEvery === orderedEvery - 1 ? TAG.ordered : TAG.simple;
      raw.prepare(s, i % depth, OP.read, dev, 0, (i % depth) * BLOCK, BLOCK, (i % 256) * BLOCK, tag);
    }
    raw.submit(n);
  };
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  const done = new Promise((resolve) => {
    let inflight = depth;
    raw.onComplete = (_cq, count) => {
      completed += count;
      inflight -= count;
      if (!stopping && process.hrtime.bigint() >= deadline) stopping = true;
      if (!stopping) {
        submit(count);
        inflight += count;
      } else if (inflight === 0) {
        resolve();
      }
    };
  });
  submit(depth);
  await done;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  await ring.close();
  return completed / elapsed;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-bench-'));
const file = path.join(dir, 'null.img');
fs.writeFileSync(file, Buffer.alloc(256 * BLOCK));
try {
  console.log(`null engine, latency ${latencyUs} µs, raw API, depth ${depth}, 4 KiB reads, ${seconds}s x ${repeat}, node ${process.version}, ${os.cpus()[0]?.model ?? ''}`);
  // Modes alternate run by run so drift in machine load hits both alike.
  const modes = [['all SIMPLE', 0, []], [`1 ORDERED per ${every}`, every, []]];
  for (let r = 0; r < repeat; r++) for (const [, n, rates] of modes) rates.push(await measure(file, n));
  const fmt = (x) => `${(x / 1e6).toFixed(2)}M`;
  for (const [label, , rates] of modes) {
    const sorted = [...rates].sort((a, b) => a - b);
    console.log(`${label.padEnd(20)} median ${fmt(sorted[sorted.length >> 1])} req/s  (runs: ${rates.map(fmt).join(', ')})`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
