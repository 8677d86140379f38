// fio as a contender: the same job as a fio command line, its JSON read back
// into our result record (fio's own clat percentiles and CPU figures).
import { spawnSync } from 'node:child_process';

import type { JobSpec } from './options';
import type { JobResult, Target } from './workload';

export const FIO_INSTALL = 'fio is not on PATH: install it (Debian/Ubuntu: apt-get install -y fio; Fedora: dnf install fio) to compare against it';

export function fioVersion(): string | null {
  const r = spawnSync('fio', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The fio command line for a job; shown in reports so it can be rerun by hand. */
export function fioArgs(job: JobSpec, target: Target, ioengine: string): string[] {
  const a = [
    '--name=bench', `--filename=${target.path.replace(/:/g, '\\:')}`, `--rw=${job.rw}`, `--bs=${job.bs}`,
    `--iodepth=${job.iodepth}`, `--ioengine=${ioengine}`, `--direct=${job.direct ? 1 : 0}`, `--size=${target.size}`,
    `--runtime=${Math.max(1, Math.round(job.runtime * 1000))}ms`, '--time_based',
    // Same conditions as ours: keep the page cache (the file was just written),
    // pick blocks independently at random, report percentiles we report.
    '--invalidate=0', '--norandommap', '--percentile_list=50:99:99.9', '--unified_rw_reporting=both',
    '--output-format=json',
  ];
  if (job.rw === 'randrw') a.push(`--rwmixread=${job.rwmixread}`);
  if (job.numjobs > 1) a.push(`--numjobs=${job.numjobs}`, '--group_reporting');
  return a;
}

interface FioDir {
  io_bytes: number;
  total_ios: number;
  clat_ns: { max: number; mean: number; percentile?: Record<string, number> };
}

export function runFio(job: JobSpec, target: Target, ioengine: string): JobResult {
  const args = fioArgs(job, target, ioengine);
  const r = spawnSync('fio', args, { encoding: 'utf8', timeout: (job.runtime + 60) * 1000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`fio ${ioengine} failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: Record<string, unknown>[] };
  const j = out.jobs[0]!;
  if (j.error) throw new Error(`fio ${ioengine}: job error ${String(j.error)}`);
  const read = j.read as FioDir;
  const write = j.write as FioDir;
  const mixed = j.mixed as FioDir;
  const ms = j.job_runtime as number;
  const ios = read.total_ios + write.total_ios;
  const pct = mixed.clat_ns.percentile ?? {};
  const us = (ns: number | undefined): number => Math.round((ns ?? 0) / 10) / 100;
  const usr = j.usr_cpu as number;
  const sys = j.sys_cpu as number;
  return {
    contender: `fio ${ioengine}`,
    job,
    ios,
    reads: read.total_ios,
    writes: write.total_ios,
    bytes: read.io_bytes + write.io_bytes,
    readBytes: read.io_bytes,
    writeBytes: write.io_bytes,
    errors: 0,
    elapsedMs: ms,
    iops: Math.round((ios / ms) * 1000),
    bw: Math.round(((read.io_bytes + write.io_bytes) / ms) * 1000),
    clat: {
      p50: us(pct['50.000000']),
      p99: us(pct['99.000000']),
      p999: us(pct['99.900000']),
      max: us(mixed.clat_ns.max),
      mean: us(mixed.clat_ns.mean),
    },
    cpu: { userMs: Math.round((usr * ms) / 100), systemMs: Math.round((sys * ms) / 100), usr, sys },
    note: `fio ${args.join(' ')}`,
  };
}
