#!/usr/bin/env node
// blockring-bench: fio-style jobs on blockring, alone or side by side with
// fio and node:fs (--compare). `npm run bench` runs the default suite.
import os from 'node:os';

import {
  barSuite, blockringContender, fioContender, runCompare, standardContenders, writeCompare, type CompareJob,
} from './compare';
import { describeJob, parseCli, USAGE, UsageError, type JobSpec } from './options';
import { resultsTable } from './report';
import { runBlockring } from './run-blockring';
import { FIO_INSTALL, fioVersion } from './run-fio';
import { runNodeFs } from './run-node-fs';
import { DEFAULT_SIZE, prepareTarget, type JobResult, type Target } from './workload';

function defaultSuite(base: JobSpec): JobSpec[] {
  const j = (over: Partial<JobSpec>): JobSpec => ({ ...base, rw: 'randread', bs: 4096, iodepth: 32, direct: false, runtime: 2, ...over });
  return [
    j({ api: 'raw' }),
    j({ api: 'batch', batch: 8 }),
    j({ api: 'promise' }),
    j({ api: 'raw', direct: true }),
    j({ api: 'raw', rw: 'randwrite', direct: true }),
    j({ api: 'raw', rw: 'read', bs: 1 << 20, iodepth: 8, direct: true }),
  ];
}

function progressLine(enabled: boolean): (line: string) => void {
  if (!enabled) return () => {};
  return (line) => {
    const cols = process.stderr.columns || 100;
    process.stderr.write(`\r\x1b[K${line.slice(0, cols - 1)}`);
  };
}

function machine(): Record<string, unknown> {
  return { nproc: os.availableParallelism(), kernel: os.release(), cpu: os.cpus()[0]?.model ?? '', node: process.version };
}

function rssLines(results: JobResult[]): string[] {
  const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  return results.filter((r) => r.rss).map((r) => {
    const s = r.rss!;
    return `RSS over ${r.ios.toLocaleString('en-US')} requests (${r.contender}): start ${mb(s.start)}, after warm-up ${mb(s.warm)}, ` +
      `end ${mb(s.end)}; growth since warm-up ${mb(s.end - s.warm)}, since start ${mb(s.end - s.start)}`;
  });
}

export async function main(argv: string[]): Promise<number> {
  const cli = parseCli(argv);
  if (!cli) {
    process.stdout.write(USAGE);
    return 0;
  }
  const progress = progressLine(process.stderr.isTTY === true && !cli.quiet);
  const first = cli.jobs[0]!;

  // A contender process of --compare: one job, JSON out.
  if (cli.contender) {
    const target = prepareTarget(first.filename, first.size);
    const run = cli.contender === 'node-fs' ? runNodeFs : cli.contender === 'blockring' ? runBlockring : null;
    if (!run) throw new UsageError(`unknown --contender '${cli.contender}'`);
    process.stdout.write(`${JSON.stringify(await run(first, target))}\n`);
    return 0;
  }

  let target: Target | null = null;
  const cleanup = (): void => target?.cleanup();
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    if (!cli.quiet && !first.filename) progress(`creating and filling a ${(first.size || DEFAULT_SIZE) / 1048576} MiB temporary file...`);
    target = prepareTarget(first.filename, first.size);
    const sized = (j: JobSpec): JobSpec => ({ ...j, size: target!.size, filename: target!.path });

    if (cli.compare) {
      const fio = fioVersion();
      if (!fio) process.stderr.write(`note: ${FIO_INSTALL}\n`);
      let jobs: CompareJob[];
      let pending: string[] = [];
      if (cli.defaults) {
        ({ jobs, pending } = barSuite(sized(first), fio !== null));
      } else if (cli.variants.length > 1) {
        // The values of the list options are the contenders, each blockring API on each.
        const contenders = cli.apis.flatMap((a) => cli.variants.map((v) => blockringContender(a, v.over, `blockring ${a} ${v.name}`)));
        const v0 = cli.variants[0]!.over;
        jobs = cli.jobs.filter((j) => j.api === cli.apis[0] && j.engine === v0.engine && j.fixed === v0.fixed && j.orderedEvery === v0.orderedEvery)
          // Every contender sets its own variant; the title names none of them.
          .map((j) => ({ ...j, fixed: true, orderedEvery: 0 }))
          .map((j) => ({ label: describeJob(j), job: sized(j), contenders, goals: [] }));
      } else {
        // The null engine does no I/O: its peer is fio's null engine, nothing else.
        const contenders = first.engine === 'null'
          ? [...cli.apis.map((a) => blockringContender(a)), ...(fio ? [fioContender('null')] : [])]
          : standardContenders(cli.apis, fio !== null, first.numjobs);
        jobs = cli.jobs.filter((j) => j.api === cli.apis[0]).map((j) => ({ label: describeJob(j), job: sized(j), contenders, goals: [] }));
      }
      const command = `blockring-bench ${argv.join(' ')}`.trim();
      const report = runCompare(jobs, target, { rounds: cli.rounds, out: cli.out, progress }, pending, command);
      const files = writeCompare(report, cli.out);
      if (cli.json) process.stdout.write(`${JSON.stringify(report.json, null, 2)}\n`);
      else process.stdout.write(`${report.text}\n\nwrote ${files.join(', ')}\n`);
      return 0;
    }

    const jobs = (cli.defaults ? defaultSuite(first) : cli.jobs).map(sized);
    const results: JobResult[] = [];
    for (const [i, job] of jobs.entries()) {
      const what = job.requests ? `${job.requests} requests` : `${job.runtime}s`;
      progress(`[${i + 1}/${jobs.length}] blockring ${job.api}: ${describeJob(job)} (${what})`);
      results.push(await runBlockring(job, target));
    }
    progress('');
    if (cli.json) {
      process.stdout.write(`${JSON.stringify({ machine: machine(), target: { path: target.path, size: target.size }, results }, null, 2)}\n`);
    } else {
      const where = first.filename ? target.path : `a temporary ${target.size / 1048576} MiB file in ${os.tmpdir()}`;
      process.stdout.write(`blockring-bench on ${where} (${os.availableParallelism()} cores, Linux ${os.release()})\n\n`);
      process.stdout.write(`${resultsTable(results)}\n`);
      for (const line of rssLines(results)) process.stdout.write(`\n${line}\n`);
      const notes = [...new Set(results.map((r) => r.note).filter(Boolean))];
      for (const n of notes) process.stdout.write(`\nnote: ${n}`);
      process.stdout.write('\n');
    }
    return 0;
  } finally {
    progress('');
    cleanup();
  }
}

/** Runs the bench CLI and sets the exit code; `blockring bench` calls it too. */
export function runBenchCli(argv: string[], name = 'blockring-bench'): Promise<void> {
  return main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      const err = e as Error & { code?: string };
      if (e instanceof UsageError) process.stderr.write(`${name}: ${err.message}\n\n${USAGE}`);
      else process.stderr.write(`${name}: ${err.message}${err.code ? ` (${err.code})` : ''}\n`);
      process.exitCode = e instanceof UsageError ? 2 : 1;
    },
  );
}

if (require.main === module) void runBenchCli(process.argv.slice(2));
