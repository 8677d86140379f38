// Job description and the fio-like command line.
import { parseArgs } from 'node:util';

export type Rw = 'read' | 'write' | 'randread' | 'randwrite' | 'randrw';
export type Api = 'promise' | 'batch' | 'raw';
const RWS: readonly Rw[] = ['read', 'write', 'randread', 'randwrite', 'randrw'];
const APIS: readonly Api[] = ['promise', 'batch', 'raw'];

/** One job: what fio calls a job section. */
export interface JobSpec {
  rw: Rw;
  /** Percentage of reads in randrw. */
  rwmixread: number;
  bs: number;
  iodepth: number;
  direct: boolean;
  /** Bytes of the file (or device) the job covers. */
  size: number;
  /** Seconds. */
  runtime: number;
  filename: string;
  engine: string;
  api: Api;
  /** Requests per ring.submit() for --api batch. */
  batch: number;
  /**
   * Raw API: most records per raw.submit() (fio's iodepth_batch_submit);
   * 0 resubmits all of a completion callback's slots in one call.
   */
  submitBatch: number;
  /** Stop after this many requests instead of after runtime (0: time-based). */
  requests: number;
  /** Identical jobs run at once, each on its own worker thread and ring (fio's numjobs). */
  numjobs: number;
  /** Ring option pollMicros: polling mode (0: off). */
  pollMicros: number;
  /** Raw API: registerBuffers(..., { fixed }) (io_uring READ_FIXED / WRITE_FIXED). */
  fixed: boolean;
  /** Raw API: every Nth record is tagged TAG.ordered, the rest TAG.simple (0: all simple). */
  orderedEvery: number;
  /** Null engine: new Ring({ nullEngine: { latencyUs } }). */
  nullLatencyUs: number;
  /** Ring option threads: the threads engine's pool size (0: the library's default). */
  threads: number;
}

/** One value of the list options (--engine, --fixed, --ordered_every) when they list more than one. */
export interface Variant {
  /** e.g. 'engine=libaio fixed=0': only the options that vary. */
  name: string;
  over: Pick<JobSpec, 'engine' | 'fixed' | 'orderedEvery'>;
}

export class UsageError extends Error {}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** fio-style sizes: 4k, 1m, 2g (binary units), or plain bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what}: not a size: '${text}'`);
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what}: out of range: '${text}'`);
  return n;
}

/** Durations in seconds, with an optional s/ms/m suffix. */
export function parseSeconds(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what}: not a duration: '${text}'`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

function parseUint(text: string, what: string, min = 0): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${what}: not an integer: '${text}'`);
  const n = Number(text);
  if (n < min) throw new UsageError(`${what}: must be at least ${min}`);
  return n;
}

function parseBool(text: string | boolean | undefined): boolean {
  if (text === undefined || text === false) return false;
  if (text === true) return true;
  return !['0', 'false', 'no', 'off'].includes(text.toLowerCase());
}

function list<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  return text.split(',').map((s) => {
    if (!allowed.includes(s as T)) throw new UsageError(`${what}: '${s}' is not one of ${allowed.join('|')}`);
    return s as T;
  });
}

export interface Cli {
  /** Jobs to run; lists (--iodepth 1,32,128) expand to one job each. */
  jobs: JobSpec[];
  /** True when no job option was given (run a default suite). */
  defaults: boolean;
  apis: Api[];
  /** The combinations of --engine, --fixed and --ordered_every; one entry when none lists more than one value. */
  variants: Variant[];
  json: boolean;
  compare: boolean;
  rounds: number;
  out: string;
  contender: string | null;
  quiet: boolean;
}

export const USAGE = `usage: blockring-bench [options]

With no options, runs a default suite of blockring jobs on a temporary file.

job options (fio names and meanings):
  --rw read|write|randread|randwrite|randrw   access pattern (default randread)
  --rwmixread N      percent reads for randrw (default 50)
  --bs SIZE          block size, e.g. 4k, 1m (default 4k)
  --iodepth N[,N..]  requests kept in flight (default 32; a list runs one job per depth)
  --engine NAME[,NAME..]  blockring engine, passed to new Ring({ engine }) (default auto)
  --direct 0|1       O_DIRECT (default 0)
  --size SIZE        bytes covered (default 256m; a block device: its size)
  --runtime SECONDS  time per job (default 5, 2 in suites)
  --filename PATH    file or block device (default: a temp file, filled, then removed)
  --api promise|batch|raw[,..]  blockring API (default raw)
  --batch N          requests per ring.submit() with --api batch (default iodepth/4)
  --iodepth_batch_submit N  with --api raw: at most N records per raw.submit() (fio's option;
                     fio's default is 1); default 0: all slots freed by one completion
                     callback go in one submit call
  --requests N       stop after N requests instead of runtime; reports RSS at start and end
  --numjobs N        N identical jobs at once, each on its own worker thread with its own ring
                     (fio's meaning; results are the sum, latencies merged; default 1)
  --poll_micros N    blockring: new Ring({ pollMicros: N }), the polling mode (default 0: off)
  --threads N        blockring: new Ring({ threads: N }), the threads engine's pool size
  --fixed 0|1[,..]   --api raw: registerBuffers(bufs, { fixed }), io_uring registered buffers
                     (default 1)
  --ordered_every N[,..]  --api raw: tag every Nth request TAG.ordered, the rest TAG.simple
                     (default 0: all simple)
  --null_latency N   --engine null: new Ring({ nullEngine: { latencyUs: N } }) (default 0)

  A list in --engine, --fixed or --ordered_every runs one job per value (per combination);
  with --compare the values are the contenders, interleaved round by round, against the first.

output:
  --json             print results as JSON instead of a table
  --compare          run the job(s) against fio (io_uring, libaio, psync), node:fs/promises
                     and node:fs with UV_USE_IO_URING=1, interleaved over rounds; with no
                     job options runs the standard comparison suite (bench/RESULTS.md)
  --rounds N         rounds for --compare (default 3)
  --out PREFIX       where --compare writes PREFIX.json and PREFIX.svg (default ./bench-compare)
  -h, --help
`;

export function parseCli(argv: string[]): Cli | null {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rw: { type: 'string' },
      rwmixread: { type: 'string' },
      bs: { type: 'string' },
      iodepth: { type: 'string' },
      engine: { type: 'string' },
      direct: { type: 'string' },
      size: { type: 'string' },
      runtime: { type: 'string' },
      filename: { type: 'string' },
      api: { type: 'string' },
      batch: { type: 'string' },
      iodepth_batch_submit: { type: 'string' },
      requests: { type: 'string' },
      numjobs: { type: 'string' },
      poll_micros: { type: 'string' },
      threads: { type: 'string' },
      fixed: { type: 'string' },
      ordered_every: { type: 'string' },
      null_latency: { type: 'string' },
      json: { type: 'boolean' },
      compare: { type: 'boolean' },
      rounds: { type: 'string' },
      out: { type: 'string' },
      contender: { type: 'string' }, // internal: --compare runs each contender as a child
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const jobKeys = ['rw', 'rwmixread', 'bs', 'iodepth', 'direct', 'size', 'runtime', 'filename', 'requests', 'batch', 'iodepth_batch_submit', 'numjobs', 'poll_micros',
    'threads', 'fixed', 'ordered_every', 'null_latency'] as const;
  const apis = list(values.api ?? 'raw', APIS, '--api');
  const engines = (values.engine ?? 'auto').split(',');
  if (engines.some((e) => e === '')) throw new UsageError(`--engine: empty name in '${values.engine}'`);
  const fixeds = (values.fixed ?? '1').split(',').map((s) => parseBool(s));
  const ordered = (values.ordered_every ?? '0').split(',').map((s) => parseUint(s, '--ordered_every'));
  if ((values.fixed !== undefined || values.ordered_every !== undefined) && apis.some((a) => a !== 'raw')) {
    throw new UsageError('--fixed and --ordered_every apply to --api raw only');
  }
  const variants: Variant[] = [];
  for (const engine of engines) {
    for (const fixed of fixeds) {
      for (const orderedEvery of ordered) {
        const name = [engines.length > 1 ? `engine=${engine}` : '', fixeds.length > 1 ? `fixed=${fixed ? 1 : 0}` : '',
          ordered.length > 1 ? `ordered_every=${orderedEvery}` : ''].filter(Boolean).join(' ');
        variants.push({ name, over: { engine, fixed, orderedEvery } });
      }
    }
  }
  const defaults = jobKeys.every((k) => values[k] === undefined) && variants.length === 1;
  const depths = (values.iodepth ?? '32').split(',').map((s) => parseUint(s, '--iodepth', 1));
  const rwmixread = parseUint(values.rwmixread ?? '50', '--rwmixread');
  if (rwmixread > 100) throw new UsageError('--rwmixread: must be 0..100');
  const base = {
    rw: list(values.rw ?? 'randread', RWS, '--rw')[0]!,
    rwmixread,
    bs: parseSize(values.bs ?? '4k', '--bs'),
    direct: parseBool(values.direct),
    size: values.size === undefined ? 0 : parseSize(values.size, '--size'),
    runtime: parseSeconds(values.runtime ?? (values.compare ? '2' : '5'), '--runtime'),
    filename: values.filename ?? '',
    ...variants[0]!.over,
    requests: values.requests === undefined ? 0 : parseUint(values.requests, '--requests', 1),
    submitBatch: parseUint(values.iodepth_batch_submit ?? '0', '--iodepth_batch_submit'),
    numjobs: parseUint(values.numjobs ?? '1', '--numjobs', 1),
    pollMicros: parseUint(values.poll_micros ?? '0', '--poll_micros'),
    threads: parseUint(values.threads ?? '0', '--threads'),
    nullLatencyUs: parseUint(values.null_latency ?? '0', '--null_latency'),
  };
  const jobs: JobSpec[] = [];
  for (const iodepth of depths) {
    for (const api of apis) {
      const batch = values.batch === undefined ? Math.max(1, Math.floor(iodepth / 4)) : parseUint(values.batch, '--batch', 1);
      for (const v of variants) jobs.push({ ...base, ...v.over, iodepth, api, batch: Math.min(batch, iodepth) });
    }
  }
  return {
    jobs,
    defaults,
    apis,
    variants,
    json: values.json ?? false,
    compare: values.compare ?? false,
    rounds: parseUint(values.rounds ?? '3', '--rounds', 1),
    out: values.out ?? 'bench-compare',
    contender: values.contender ?? null,
    quiet: values.quiet ?? false,
  };
}

/** The command-line options that reproduce a job (for child processes and reports). */
export function jobArgs(job: JobSpec): string[] {
  const a = ['--rw', job.rw, '--bs', String(job.bs), '--iodepth', String(job.iodepth), '--engine', job.engine,
    '--direct', job.direct ? '1' : '0', '--size', String(job.size), '--runtime', String(job.runtime),
    '--api', job.api, '--batch', String(job.batch), '--iodepth_batch_submit', String(job.submitBatch)];
  if (job.rw === 'randrw') a.push('--rwmixread', String(job.rwmixread));
  if (job.filename) a.push('--filename', job.filename);
  if (job.requests) a.push('--requests', String(job.requests));
  if (job.numjobs > 1) a.push('--numjobs', String(job.numjobs));
  if (job.pollMicros) a.push('--poll_micros', String(job.pollMicros));
  if (job.threads) a.push('--threads', String(job.threads));
  if (job.api === 'raw') a.push('--fixed', job.fixed ? '1' : '0', '--ordered_every', String(job.orderedEvery));
  if (job.nullLatencyUs) a.push('--null_latency', String(job.nullLatencyUs));
  return a;
}

export function describeJob(job: JobSpec): string {
  const bs = job.bs % (1 << 20) === 0 ? `${job.bs >> 20}m` : job.bs % 1024 === 0 ? `${job.bs >> 10}k` : `${job.bs}`;
  const mix = job.rw === 'randrw' ? `(${job.rwmixread}% read)` : '';
  const sb = job.api === 'raw' && job.submitBatch ? ` submit_batch=${job.submitBatch}` : '';
  const nj = job.numjobs > 1 ? ` numjobs=${job.numjobs}` : '';
  const pm = job.pollMicros ? ` poll_micros=${job.pollMicros}` : '';
  const raw = job.api === 'raw' ? `${job.fixed ? '' : ' fixed=0'}${job.orderedEvery ? ` ordered_every=${job.orderedEvery}` : ''}` : '';
  const more = `${job.threads ? ` threads=${job.threads}` : ''}${job.nullLatencyUs ? ` null_latency=${job.nullLatencyUs}` : ''}`;
  return `${job.rw}${mix} bs=${bs} iodepth=${job.iodepth}${job.direct ? ' direct' : ''}${sb}${nj}${pm}${raw}${more}`;
}
