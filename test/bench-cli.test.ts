import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LatencyHistogram } from '../dist/bench/histogram.js';
import type { JobResult } from '../dist/bench/workload.js';
import { rng, tempDir } from './helpers/tmp';

const CLI = path.join(__dirname, '..', 'dist', 'bench', 'cli.js');

type Result = JobResult;

function bench(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, '--quiet', ...args], { encoding: 'utf8', timeout: 60_000 });
}

function checkCounts(r: Result): void {
  expect(r.errors).toBe(0);
  expect(r.ios).toBeGreaterThan(0);
  expect(r.ios).toBe(r.reads + r.writes);
  expect(r.bytes).toBe(r.ios * r.job.bs);
  expect(r.readBytes).toBe(r.reads * r.job.bs);
  expect(r.writeBytes).toBe(r.writes * r.job.bs);
  expect(r.readBytes + r.writeBytes).toBe(r.bytes);
  expect(r.elapsedMs).toBeGreaterThan(0);
  // Derived figures agree with the counts (elapsedMs is rounded to 1 µs).
  const near = (a: number, b: number): void => expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.max(1, b * 1e-4));
  near(r.iops, (r.ios / r.elapsedMs) * 1000);
  near(r.bw, (r.bytes / r.elapsedMs) * 1000);
  const c = r.clat;
  expect(c.p50).toBeGreaterThanOrEqual(0);
  expect(c.p50).toBeLessThanOrEqual(c.p99);
  expect(c.p99).toBeLessThanOrEqual(c.p999);
  expect(c.p999).toBeLessThanOrEqual(c.max);
  for (const v of [r.cpu.userMs, r.cpu.systemMs, r.cpu.usr, r.cpu.sys]) expect(v).toBeGreaterThanOrEqual(0);
}

describe('blockring-bench CLI', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());

  it('prints well-formed JSON whose counts add up, for every API', () => {
    const file = path.join(t.dir, 'bench.dat');
    const r = bench(['--rw', 'randrw', '--rwmixread', '70', '--bs', '4k', '--iodepth', '4', '--size', '1m',
      '--runtime', '0.2', '--api', 'raw,batch,promise', '--filename', file, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { machine: { nproc: number }; target: { path: string; size: number }; results: Result[] };
    expect(out.machine.nproc).toBeGreaterThan(0);
    expect(out.target).toEqual({ path: file, size: 1 << 20 });
    expect(out.results.map((x) => x.job.api)).toEqual(['raw', 'batch', 'promise']);
    for (const x of out.results) {
      checkCounts(x);
      expect(x.contender).toMatch(/^blockring (raw|batch|promise) \(io_uring\)$/);
      expect(x.reads).toBeGreaterThan(0);
      expect(x.writes).toBeGreaterThan(0);
    }
    // A named file is created, filled, and kept.
    expect(fs.statSync(file).size).toBe(1 << 20);
  });

  it('stops after --requests exactly and reports RSS', () => {
    // Chunks of 3 records per raw.submit() out of 8 slots: full chunks and remainders.
    const r = bench(['--rw', 'read', '--bs', '512', '--iodepth', '8', '--iodepth_batch_submit', '3', '--size', '64k',
      '--requests', '5000', '--json', '--filename', path.join(t.dir, 'f')]);
    expect(r.status).toBe(0);
    const [x] = (JSON.parse(r.stdout) as { results: Result[] }).results;
    checkCounts(x!);
    expect(x!.ios).toBe(5000);
    expect(x!.writes).toBe(0);
    expect(x!.rss!.start).toBeGreaterThan(0);
    expect(x!.rss!.end).toBeGreaterThan(0);
  });

  it('--numjobs N runs N jobs on worker threads and adds them up', () => {
    const r = bench(['--rw', 'randrw', '--bs', '4k', '--iodepth', '2', '--size', '256k', '--numjobs', '3',
      '--requests', '700', '--api', 'raw,promise', '--json', '--filename', path.join(t.dir, 'f')]);
    expect(r.status).toBe(0);
    for (const x of (JSON.parse(r.stdout) as { results: Result[] }).results) {
      expect(x.ios).toBe(3 * 700);
      expect(x.reads).toBeGreaterThan(0);
      expect(x.writes).toBeGreaterThan(0);
      expect(x.ios).toBe(x.reads + x.writes);
      expect(x.job.numjobs).toBe(3);
      expect(x.contender).toMatch(/^blockring (raw|promise) \(io_uring\)$/);
      expect(x.iops).toBeGreaterThan(0);
      expect(x.clat.p50).toBeLessThanOrEqual(x.clat.p99);
      expect(x.clat.p99).toBeLessThanOrEqual(x.clat.max);
    }
  });

  it('passes --engine to the ring and reports its error', () => {
    const r = bench(['--engine', 'no-such-engine', '--size', '64k', '--runtime', '0.1', '--filename', path.join(t.dir, 'f')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no-such-engine/);
    expect(r.stdout).toBe('');
  });

  it('rejects bad options with usage', () => {
    const r = bench(['--rw', 'sideways']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--rw: 'sideways' is not one of/);
  });

  it('list values of --engine/--fixed/--ordered_every run one job each, and are the contenders of --compare', () => {
    const f = path.join(t.dir, 'f');
    const r = bench(['--engine', 'null', '--ordered_every', '0,4', '--null_latency', '0', '--iodepth', '8', '--size', '64k',
      '--requests', '200000', '--json', '--filename', f]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const jobs = (JSON.parse(r.stdout) as { results: Result[] }).results;
    expect(jobs.map((x) => x.job.orderedEvery)).toEqual([0, 4]);
    for (const x of jobs) {
      checkCounts(x);
      expect(x.ios).toBe(200000);
      expect(x.contender).toBe('blockring raw (null)');
    }
    const out = path.join(t.dir, 'ab');
    const c = bench(['--compare', '--fixed', '1,0', '--size', '256k', '--runtime', '0.1', '--rounds', '2',
      '--filename', f, '--out', out, '--json']);
    expect(c.status).toBe(0);
    const rep = JSON.parse(c.stdout) as {
      jobs: { contenders: { name: string; ratiosPerRound: number[]; rounds: (Result | { error: string })[] }[] }[];
    };
    expect(rep.jobs).toHaveLength(1);
    const [a, b] = rep.jobs[0]!.contenders;
    expect([a!.name, b!.name]).toEqual(['blockring raw fixed=1', 'blockring raw fixed=0']);
    expect(b!.ratiosPerRound).toHaveLength(2);
    for (const x of [...a!.rounds, ...b!.rounds]) {
      if ('error' in x) throw new Error(x.error);
      checkCounts(x);
    }
    expect(bench(['--fixed', '0', '--api', 'promise']).stderr).toMatch(/apply to --api raw only/);
  });

  it('--compare writes a JSON report and an SVG chart', () => {
    const out = path.join(t.dir, 'cmp');
    const r = bench(['--compare', '--iodepth', '1,2', '--size', '256k', '--runtime', '0.1', '--rounds', '1',
      '--filename', path.join(t.dir, 'f'), '--out', out, '--json']);
    expect(r.status).toBe(0);
    const rep = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8')) as {
      machine: { nproc: number; kernel: string };
      jobs: { job: { iodepth: number }; contenders: { name: string; rounds: (Result | { error: string })[] }[] }[];
    };
    expect(JSON.parse(r.stdout)).toEqual(rep);
    expect(rep.jobs.map((j) => j.job.iodepth)).toEqual([1, 2]);
    for (const j of rep.jobs) {
      const names = j.contenders.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['blockring raw', 'node:fs/promises', 'node:fs UV_USE_IO_URING=1']));
      for (const c of j.contenders) {
        expect(c.rounds).toHaveLength(1);
        const x = c.rounds[0]!;
        if ('error' in x) throw new Error(`${c.name}: ${x.error}`);
        checkCounts(x);
      }
    }
    const svg = fs.readFileSync(`${out}.svg`, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('blockring raw');
  });
});

describe('latency histogram', () => {
  it('percentiles are within 1% of the exact ones', () => {
    const rand = rng(7);
    const h = new LatencyHistogram();
    const samples: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Log-uniform from 100 ns to 100 s: every octave the histogram has.
      const v = Math.floor(100 * 10 ** (rand() * 9));
      samples.push(v);
      h.record(v);
    }
    samples.sort((a, b) => a - b);
    for (const p of [1, 50, 90, 99, 99.9, 100]) {
      const exact = samples[Math.max(0, Math.ceil((p / 100) * samples.length) - 1)]!;
      const got = h.percentile(p);
      expect(got).toBeGreaterThanOrEqual(exact);
      expect(got).toBeLessThanOrEqual(exact * 1.01);
    }
    expect(h.max).toBe(samples[samples.length - 1]);
    expect(h.count).toBe(samples.length);
  });
});
