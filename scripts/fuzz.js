#!/usr/bin/env node
// npm run fuzz [-- <calls> [<first seed>]]: the long fuzz run. Runs the
// fast-check API fuzzer (test/fixtures/api-fuzz.js) on every engine, one
// child process per engine and seed (a crash is reported with its seed),
// until at least <calls> calls (default 100,000) were made. Prints totals.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const target = Number(process.argv[2] ?? 100000);
let seed = Number(process.argv[3] ?? Date.now() % 1e9);
const ENGINES = ['io_uring', 'libaio', 'threads', 'mmap', 'null'];
const runner = path.join(__dirname, '..', 'test', 'fixtures', 'api-fuzz.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-fuzz-'));
const total = { calls: 0, ok: 0, runs: 0, children: 0, refused: {}, ioErrors: {}, byEngine: {} };
const started = Date.now();
let failed = false;
try {
  while (total.calls < target && !failed) {
    for (const engine of ENGINES) {
      const r = spawnSync(process.execPath, [runner, engine, String(seed), '400', dir], { encoding: 'utf8', timeout: 600_000 });
      total.children++;
      let out = {};
      try {
        out = JSON.parse(r.stdout.trim().split('\n').pop());
      } catch {
        out = {};
      }
      if (r.status !== 0 || r.signal) {
        console.error(`FAILED: engine ${engine} seed ${seed} status ${r.status} signal ${r.signal}\n${out.failure ?? r.stderr}`);
        failed = true;
        break;
      }
      total.calls += out.calls;
      total.ok += out.ok;
      total.runs += out.runs;
      total.byEngine[engine] = (total.byEngine[engine] ?? 0) + out.calls;
      for (const k of ['refused', 'ioErrors']) for (const [c, n] of Object.entries(out[k])) total[k][c] = (total[k][c] ?? 0) + n;
    }
    seed++;
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ ...total, lastSeed: seed - 1, seconds: Math.round((Date.now() - started) / 1000) }, null, 1));
process.exit(failed ? 1 : 0);
