// --compare: each job against the tools people would use instead, in the
// same run, interleaved round by round (A B C A B C ...) so slow drift on a
// shared machine hits every contender alike. Every contender runs in its own
// process (fio, or a child of this CLI), so CPU figures are per contender.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Ring, type EngineName } from '../lib/index';
import { describeJob, jobArgs, type Api, type JobSpec } from './options';
import { lat, mib, num, svgChart, table, type Series } from './report';
import { FIO_INSTALL, fioArgs, fioVersion, runFio } from './run-fio';
import type { JobResult, Target } from './workload';

export interface Contender {
  name: string;
  run(job: JobSpec, target: Target): JobResult;
}

/** A comparison the issue sets a goal for: ours / theirs >= goal. */
export interface Goal {
  ours: string;
  /** A contender name, or 'best fio' for the best fio engine of each round. */
  theirs: string;
  goal: number;
}

export interface CompareJob {
  label: string;
  job: JobSpec;
  contenders: Contender[];
  goals: Goal[];
}

export interface CompareOptions {
  rounds: number;
  out: string;
  progress: (line: string) => void;
}

const CLI = path.join(__dirname, 'cli.js');

function child(job: JobSpec, target: Target, kind: string, env: NodeJS.ProcessEnv): JobResult {
  const args = [CLI, '--contender', kind, '--json', '--quiet', ...jobArgs({ ...job, filename: target.path, size: target.size })];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env, timeout: (job.runtime + 60) * 1000, maxBuffer: 16 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(r.stderr.trim().split('\n').pop() || `exit ${r.status}`);
  return JSON.parse(r.stdout) as JobResult;
}

export function blockringContender(api: Api, over: Partial<JobSpec> = {}, name = `blockring ${api}`): Contender {
  return { name, run: (job, target) => child({ ...job, api, ...over }, target, 'blockring', process.env) };
}

/** The raw API submitting one record per call, as fio does by default (iodepth_batch_submit=1). */
const RAW_SUBMIT_1 = 'blockring raw, submit 1';

export function nodeFsContender(uring: boolean): Contender {
  return {
    name: uring ? 'node:fs UV_USE_IO_URING=1' : 'node:fs/promises',
    run: (job, target) => child(job, target, 'node-fs', { ...process.env, UV_USE_IO_URING: uring ? '1' : '0' }),
  };
}

export function fioContender(ioengine: string): Contender {
  return { name: `fio ${ioengine}`, run: (job, target) => runFio(job, target, ioengine) };
}

/** The contenders for a job: blockring APIs, fio engines (when installed), node:fs. */
export function standardContenders(apis: Api[], hasFio: boolean, numjobs = 1): Contender[] {
  const list = apis.map((a) => blockringContender(a));
  if (hasFio) list.push(fioContender('io_uring'), fioContender('libaio'), fioContender('psync'));
  // The node:fs runner is one job on the main thread; it has no --numjobs.
  if (numjobs === 1) list.push(nodeFsContender(false), nodeFsContender(true));
  return list;
}

/** Whether this build has an engine (the null engine lives on another branch for now). */
export function engineAvailable(engine: string): string | null {
  try {
    const ring = new Ring({ engine: engine as EngineName, depth: 1 });
    void ring.close();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The issue-7 bar: the jobs and goals of its table. */
export function barSuite(base: JobSpec, hasFio: boolean): { jobs: CompareJob[]; pending: string[] } {
  const all = standardContenders(['raw', 'promise'], hasFio);
  // O_DIRECT rows also run the raw API with fio's submission pattern; see RESULTS.md on plugging.
  const direct = [all[0]!, blockringContender('raw', { submitBatch: 1 }, RAW_SUBMIT_1), ...all.slice(1)];
  const directGoals = (goal: number, theirs = 'fio io_uring'): Goal[] => [
    { ours: 'blockring raw', theirs, goal },
    { ours: RAW_SUBMIT_1, theirs, goal },
  ];
  const job = (over: Partial<JobSpec>): JobSpec => ({ ...base, rw: 'randread', bs: 4096, iodepth: 32, direct: false, ...over });
  const jobs: CompareJob[] = [
    {
      label: '4k randread, page cache, depth 32', job: job({}), contenders: all,
      goals: [{ ours: 'blockring raw', theirs: 'fio io_uring', goal: 1.0 }, { ours: 'blockring promise', theirs: 'node:fs/promises', goal: 2.5 }],
    },
    ...[1, 32, 128].map((d) => ({
      label: `4k randread, O_DIRECT, depth ${d}`, job: job({ direct: true, iodepth: d }), contenders: direct,
      goals: directGoals(0.95),
    })),
    {
      label: '4k randwrite, O_DIRECT, depth 32', job: job({ rw: 'randwrite', direct: true }), contenders: direct,
      goals: directGoals(0.95),
    },
    {
      label: '1m read, O_DIRECT, depth 8', job: job({ rw: 'read', bs: 1 << 20, direct: true, iodepth: 8 }), contenders: direct,
      goals: directGoals(0.95, 'best fio'),
    },
  ];
  const pending: string[] = [];
  const nullMissing = engineAvailable('null');
  if (nullMissing === null && hasFio) {
    jobs.push({
      label: 'null engine, depth 64', job: job({ iodepth: 64, engine: 'null' }),
      contenders: [blockringContender('raw', { engine: 'null' }), fioContender('null')],
      goals: [{ ours: 'blockring raw', theirs: 'fio null', goal: 0.5 }],
    });
  } else {
    pending.push(`null engine, depth 64: pending (${nullMissing ?? FIO_INSTALL}); run: blockring-bench --compare --engine null --api raw --iodepth 64 once the null engine is built`);
  }
  return { jobs, pending };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface ContenderRuns {
  name: string;
  rounds: (JobResult | { error: string })[];
}

const ok = (r: JobResult | { error: string }): r is JobResult => !('error' in r);

export interface CompareReport {
  text: string;
  json: unknown;
  svg: string;
}

export function runCompare(jobs: CompareJob[], target: Target, opts: CompareOptions, pending: string[], command: string): CompareReport {
  const runs: ContenderRuns[][] = jobs.map((j) => j.contenders.map((c) => ({ name: c.name, rounds: [] })));
  const total = opts.rounds * jobs.reduce((n, j) => n + j.contenders.length, 0);
  let done = 0;
  for (let round = 0; round < opts.rounds; round++) {
    jobs.forEach((cj, ji) => {
      const n = cj.contenders.length;
      for (let k = 0; k < n; k++) {
        // Rotate the starting contender each round, so none always runs first.
        const ci = (k + round) % n;
        const c = cj.contenders[ci]!;
        opts.progress(`[${++done}/${total}] round ${round + 1}/${opts.rounds}  ${cj.label}  ${c.name}`);
        let r: JobResult | { error: string };
        try {
          r = c.run(cj.job, target);
        } catch (e) {
          r = { error: (e as Error).message };
        }
        runs[ji]![ci]!.rounds.push(r);
      }
    });
  }
  opts.progress('');

  const lines: string[] = [];
  const jsonJobs: unknown[] = [];
  const barRows: string[][] = [];
  const barJson: unknown[] = [];
  jobs.forEach((cj, ji) => {
    const byName = new Map(runs[ji]!.map((c) => [c.name, c]));
    const iopsOf = (name: string, round: number): number | null => {
      if (name === 'best fio') {
        const fios = runs[ji]!.filter((c) => c.name.startsWith('fio ')).map((c) => c.rounds[round]);
        const v = fios.filter((r): r is JobResult => !!r && ok(r)).map((r) => r.iops);
        return v.length ? Math.max(...v) : null;
      }
      const r = byName.get(name)?.rounds[round];
      return r && ok(r) ? r.iops : null;
    };
    const ratios = (ours: string, theirs: string): number[] => {
      const out: number[] = [];
      for (let round = 0; round < opts.rounds; round++) {
        const a = iopsOf(ours, round);
        const b = iopsOf(theirs, round);
        if (a !== null && b) out.push(a / b);
      }
      return out;
    };
    const first = cj.contenders[0]!.name;
    const rows: string[][] = [];
    const contJson: unknown[] = [];
    for (const c of runs[ji]!) {
      const good = c.rounds.filter(ok);
      if (!good.length) {
        const err = c.rounds.find((r) => !ok(r)) as { error: string } | undefined;
        rows.push([c.name, `failed: ${err?.error ?? '?'}`, '', '', '', '', '', '', '', '']);
        contJson.push({ name: c.name, rounds: c.rounds });
        continue;
      }
      const med = median(good.map((r) => r.iops));
      // Latency and CPU from the round whose IOPS is closest to the median.
      const rep = good.reduce((a, b) => (Math.abs(b.iops - med) < Math.abs(a.iops - med) ? b : a));
      const rs = c.name === first ? [] : ratios(first, c.name);
      rows.push([c.name, num(med), mib(median(good.map((r) => r.bw))), lat(rep.clat.p50), lat(rep.clat.p99), lat(rep.clat.p999),
        lat(rep.clat.max), `${rep.cpu.usr.toFixed(0)}/${rep.cpu.sys.toFixed(0)}`,
        rs.length ? median(rs).toFixed(2) : c.name === first ? '1.00' : '', rs.map((x) => x.toFixed(2)).join(' ')]);
      contJson.push({ name: c.name, medianIops: med, ratioOfFirst: rs.length ? median(rs) : null, ratiosPerRound: rs, rounds: c.rounds });
    }
    const desc = describeJob(cj.job);
    lines.push(`### ${cj.label === desc ? desc : `${cj.label} (${desc})`}, ${cj.job.runtime}s x ${opts.rounds} rounds`, '');
    lines.push(table(['contender', 'IOPS (median)', 'MiB/s', 'clat p50 µs', 'p99', 'p99.9', 'max', 'usr/sys %', `${first} ÷ this`, 'per round'],
      rows, [false, true, true, true, true, true, true, true, true, false]), '');
    for (const g of cj.goals) {
      const rs = ratios(g.ours, g.theirs);
      const m = rs.length ? median(rs) : null;
      const med = (name: string): number | null => {
        const v = Array.from({ length: opts.rounds }, (_, r) => iopsOf(name, r)).filter((x): x is number => x !== null);
        return v.length ? median(v) : null;
      };
      const ours = med(g.ours);
      const theirs = med(g.theirs);
      barRows.push([cj.label, g.ours, g.theirs, ours === null ? '-' : num(ours), theirs === null ? '-' : num(theirs),
        m === null ? '-' : `${m.toFixed(3)}×`, rs.map((x) => x.toFixed(2)).join(' '), `≥ ${g.goal.toFixed(2)}×`,
        m === null ? 'no data' : m >= g.goal ? 'met' : 'NOT met']);
      barJson.push({ job: cj.label, ...g, oursIops: ours, theirsIops: theirs, ratio: m, ratiosPerRound: rs, met: m !== null && m >= g.goal });
    }
    jsonJobs.push({ label: cj.label, job: cj.job, contenders: contJson });
  });
  if (barRows.length) {
    lines.push('### Goals (median of per-round IOPS ratios)', '');
    lines.push(table(['job', 'ours', 'against', 'ours IOPS', 'their IOPS', 'ratio', 'per round', 'goal', ''], barRows,
      [false, false, false, true, true, true, false, false, false]), '');
  }
  for (const p of pending) lines.push(`- ${p}`);
  const fio = fioVersion();
  if (!fio) lines.push(`- ${FIO_INSTALL}`);
  else if (jobs.some((j) => j.contenders.some((c) => c.name.startsWith('fio ')))) lines.push(`- fio command lines: ${['fio', ...fioArgs(jobs[0]!.job, target, '<engine>')].join(' ')}`);

  const machine = { nproc: os.availableParallelism(), kernel: os.release(), cpu: os.cpus()[0]?.model ?? '', node: process.version, fio };
  const json = { command, machine, date: new Date().toISOString(), rounds: opts.rounds, target: { path: target.path, size: target.size },
    jobs: jsonJobs, goals: barJson, pending };

  // Chart: jobs that differ only in iodepth form one panel.
  const groups = new Map<string, number[]>();
  jobs.forEach((cj, ji) => {
    const key = `${cj.job.rw} ${cj.job.bs} ${cj.job.direct} ${cj.job.engine}`;
    groups.set(key, [...(groups.get(key) ?? []), ji]);
  });
  let chosen = [...groups.values()].filter((g) => g.length > 1);
  if (!chosen.length) chosen = [...groups.values()];
  const panels = chosen.map((g) => {
    const series = new Map<string, Series>();
    for (const ji of g) {
      for (const c of runs[ji]!) {
        const good = c.rounds.filter(ok);
        if (!good.length) continue;
        const s = series.get(c.name) ?? { name: c.name, points: [] };
        s.points.push({ x: jobs[ji]!.job.iodepth, y: median(good.map((r) => r.iops)) });
        series.set(c.name, s);
      }
    }
    const j = jobs[g[0]!]!.job;
    return { title: describeJob({ ...j, iodepth: 0 }).replace(' iodepth=0', ''), series: [...series.values()] };
  });
  const svg = svgChart(`IOPS vs iodepth, median of ${opts.rounds} interleaved rounds (${os.availableParallelism()} cores, Linux ${os.release()})`, panels);
  return { text: lines.join('\n'), json, svg };
}

export function writeCompare(report: CompareReport, out: string): string[] {
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(`${out}.json`, `${JSON.stringify(report.json, null, 2)}\n`);
  fs.writeFileSync(`${out}.svg`, report.svg);
  return [`${out}.json`, `${out}.svg`];
}
