#!/usr/bin/env node
// Interleaved A/B of one bench job across builds (or environments) of
// blockring: each round runs the job once per variant, the starting variant
// rotated, so drift in the disk or the host hits every variant alike.
//
//   node scripts/ab-builds.mjs ROUNDS label=DIR[:VAR~VALUE,...] ... -- BENCH-ARGS
//
// DIR is a checkout with dist/ built (a `git worktree` of another commit,
// say); VAR~VALUE pairs are set in that variant's environment. BENCH-ARGS go
// to DIR/dist/bench/cli.js with --json added. Prints each round, then per
// variant the median IOPS and, against the first variant, the geometric
// mean of the per-round ratios with a bootstrap 95% interval (paired by
// round) and how many rounds fell below 1.
//
//   git worktree add /tmp/before 21fa183 && (cd /tmp/before && npm ci && npm run rebuild)
//   node scripts/ab-builds.mjs 48 before=/tmp/before main=$PWD -- --rw randread --bs 4k \
//     --iodepth 32 --direct 1 --api raw --filename /tmp/bar.dat --size 1g --runtime 1
import { execFileSync } from 'node:child_process';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const rounds = Number(argv[0]);
if (!(Number.isInteger(rounds) && rounds > 0) || sep < 2) {
  console.error('usage: ab-builds.mjs ROUNDS label=DIR[:VAR~VALUE,...] ... -- BENCH-ARGS');
  process.exit(2);
}
const variants = argv.slice(1, sep).map((spec) => {
  const eq = spec.indexOf('=');
  const [dir, vars = ''] = spec.slice(eq + 1).split(':');
  const env = { ...process.env };
  for (const kv of vars.split(',').filter(Boolean)) {
    const [k, v = ''] = kv.split('~');
    env[k] = v;
  }
  return { label: spec.slice(0, eq), dir, env, iops: [] };
});
const benchArgs = argv.slice(sep + 1);

for (let r = 0; r < rounds; r++) {
  const line = [];
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + r) % variants.length];
    const out = execFileSync(process.execPath, [`${v.dir}/dist/bench/cli.js`, ...benchArgs, '--json'],
      { env: v.env, encoding: 'utf8', maxBuffer: 64 << 20 });
    const iops = JSON.parse(out.slice(out.indexOf('{'))).results[0].iops;
    v.iops.push(iops);
    line.push(`${v.label}=${Math.round(iops)}`);
  }
  console.log(`round ${r + 1}: ${line.join(' ')}`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
// A fixed seed: the same rounds give the same interval.
let seed = 0x2545f491;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const geomean = (logs) => Math.exp(logs.reduce((a, b) => a + b, 0) / logs.length);

const base = variants[0];
for (const v of variants) {
  const logs = v.iops.map((x, i) => Math.log(x / base.iops[i]));
  const boot = [];
  for (let b = 0; b < 4000; b++) boot.push(geomean(logs.map(() => logs[Math.floor(rand() * logs.length)])));
  boot.sort((a, b) => a - b);
  const below = logs.filter((l) => l < 0).length;
  console.log(`${v.label}: median ${Math.round(median(v.iops))} IOPS; ÷ ${base.label}: geometric mean ${geomean(logs).toFixed(3)}` +
    ` (95% ${boot[100].toFixed(3)}–${boot[3899].toFixed(3)}), ${below}/${rounds} rounds below 1`);
}
