#!/usr/bin/env node
// fio's nbd engine against three NBD servers exporting the same file:
// blockring (`blockring nbd`), qemu-nbd and nbdkit's file plugin, over a
// unix socket and TCP on 127.0.0.1. Rounds are interleaved (every row runs
// each server once per round, the starting server rotated) so that load
// from other work on the machine hits all of them alike; the ratio is the
// median of per-round ratios of blockring to the best peer in that round.
//
//   flock /tmp/blockring-bench.lock node bench/nbd-fio.mjs [--rounds 3] [--runtime 4] [--size-mib 256]
//     [--warmup 2] [--transports unix,tcp] [--rw randread,randwrite] [--jobs 1,4] [--engines io_uring,threads]
// (--transports/--rw/--jobs pick rows, so that ≥3 rounds fit one
// invocation of under ~3 minutes: split the rows across invocations.)
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    runtime: { type: 'string', default: '4' },
    // seconds of one uncounted run per server and row before round 1
    warmup: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '256' },
    json: { type: 'string' },
    // blockring's server once per engine named here (the best counts)
    engines: { type: 'string', default: 'io_uring,threads' },
    transports: { type: 'string', default: 'unix,tcp' },
    rw: { type: 'string', default: 'randread,randwrite' },
    jobs: { type: 'string', default: '1,4' },
  },
});
const rounds = Number(values.rounds);
const runtime = Number(values.runtime);
const warmup = Number(values.warmup);
const sizeMiB = Number(values['size-mib']);
const cli = path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', 'dist', 'lib', 'cli', 'main.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-nbd-bench-'));
const file = path.join(dir, 'disk.img');
execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${sizeMiB}`, 'status=none']);

const servers = [];
function start(name, cmd, args, uri) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  servers.push(p);
  return { name, uri };
}
const base = 10900 + Math.floor(Math.random() * 500);
const sock = (n) => path.join(dir, `${n}.sock`);
const engines = values.engines.split(',');
const ours = engines.map((e) => `blockring ${e}`);
let port = base + 3;
const want = new Set(values.transports.split(','));
const targets = {
  unix: !want.has('unix') ? [] : [
    ...engines.map((e) => start(`blockring ${e}`, process.execPath, [cli, 'nbd', file, '--engine', e, '--socket', sock(`br-${e}`)], `nbd+unix:///?socket=${sock(`br-${e}`)}`)),
    start('qemu-nbd', 'qemu-nbd', ['-f', 'raw', '-x', '', '-t', '-e', '16', `--socket=${sock('q')}`, file], `nbd+unix:///?socket=${sock('q')}`),
    start('nbdkit file', 'nbdkit', ['-f', '-U', sock('k'), 'file', file], `nbd+unix:///?socket=${sock('k')}`),
  ],
  tcp: !want.has('tcp') ? [] : [
    ...engines.map((e) => {
      const p = port++;
      return start(`blockring ${e}`, process.execPath, [cli, 'nbd', file, '--engine', e, '--listen', `127.0.0.1:${p}`], `nbd://127.0.0.1:${p}/`);
    }),
    start('qemu-nbd', 'qemu-nbd', ['-f', 'raw', '-x', '', '-t', '-e', '16', '-b', '127.0.0.1', '-p', String(base + 1), file], `nbd://127.0.0.1:${base + 1}/`),
    start('nbdkit file', 'nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(base + 2), 'file', file], `nbd://127.0.0.1:${base + 2}/`),
  ],
};
await new Promise((r) => setTimeout(r, 2000));

function fio(uri, rw, jobs, seconds = runtime) {
  const args = ['--name=nbd', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, '--bs=4k', '--iodepth=32',
    `--numjobs=${jobs}`, '--group_reporting', `--size=${sizeMiB}M`, `--runtime=${seconds}`, '--time_based',
    '--norandommap', '--output-format=json'];
  const out = execFileSync('fio', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const j = JSON.parse(out.slice(out.indexOf('{')));
  const job = j.jobs[0];
  return { iops: rw === 'randread' ? job.read.iops : job.write.iops, command: `fio ${args.join(' ')}` };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const rows = [];
for (const transport of values.transports.split(',')) {
  for (const rw of values.rw.split(',')) {
    for (const jobs of values.jobs.split(',').map(Number)) rows.push({ transport, rw, jobs, iops: {}, ratios: [] });
  }
}
let command = '';
try {
  // Uncounted: blockring's server is JIT-compiled JS, whose first seconds
  // under load run slower; every server gets the same warm-up.
  if (warmup > 0) for (const row of rows) for (const t of targets[row.transport]) fio(t.uri, row.rw, row.jobs, warmup);
  for (let round = 0; round < rounds; round++) {
    for (const row of rows) {
      const list = targets[row.transport];
      const got = {};
      for (let i = 0; i < list.length; i++) {
        const t = list[(i + round) % list.length];
        const r = fio(t.uri, row.rw, row.jobs);
        command = r.command;
        got[t.name] = r.iops;
        (row.iops[t.name] ??= []).push(r.iops);
      }
      const best = Math.max(got['qemu-nbd'], got['nbdkit file']);
      row.ratios.push(Math.max(...ours.map((o) => got[o])) / best);
      process.stderr.write(`round ${round + 1} ${row.transport} ${row.rw} x${row.jobs}: ${Object.entries(got).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')}\n`);
    }
  }
} finally {
  for (const p of servers) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  fs.rmSync(dir, { recursive: true, force: true });
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`| transport | job | connections | ${ours.map((o) => `${o} IOPS`).join(' | ')} | qemu-nbd IOPS | nbdkit file IOPS | best blockring / best peer | per round | goal ≥ 1.2× |`);
console.log(`|---|---|---:|${ours.map(() => '---:|').join('')}---:|---:|---:|---|---|`);
for (const r of rows) {
  const ratio = median(r.ratios);
  console.log(`| ${r.transport} | 4k ${r.rw}, depth 32 | ${r.jobs} | ${ours.map((o) => fmt(median(r.iops[o]))).join(' | ')} | ${fmt(median(r.iops['qemu-nbd']))} | ` +
    `${fmt(median(r.iops['nbdkit file']))} | ${ratio.toFixed(2)}× | ${r.ratios.map((x) => x.toFixed(2)).join(' ')} | ${ratio >= 1.2 ? 'met' : 'NOT met'} |`);
}
console.log(`\nfio command (last row; the URI and --rw/--numjobs vary): ${command}`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify(rows, null, 2));
