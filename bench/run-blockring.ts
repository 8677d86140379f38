// blockring jobs through each of its three APIs; --numjobs runs each job on
// its own worker thread with its own ring and merges the results.
import { once } from 'node:events';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { OP, Ring, TAG, type BlockDevice, type EngineName } from '../lib/index';
import { LatencyHistogram, type HistogramSnapshot } from './histogram';
import type { JobSpec } from './options';
import { alignedBuffer, makeResult, nowNs, Workload, type Counts, type JobResult, type Target } from './workload';

// Each result's histogram, for merging the jobs of --numjobs.
const histograms = new WeakMap<JobResult, LatencyHistogram>();

interface JobMessage {
  result: JobResult;
  hist: HistogramSnapshot;
}

export async function runBlockring(job: JobSpec, target: Target): Promise<JobResult> {
  return job.numjobs > 1 ? runJobs(job, target) : runOne(job, target, 0);
}

/** fio's numjobs: the jobs start together; IOPS and bytes add up, latencies merge. */
async function runJobs(job: JobSpec, target: Target): Promise<JobResult> {
  const start = nowNs();
  const cpu = process.cpuUsage(); // process-wide: every worker thread counts
  const one = { ...job, numjobs: 1 };
  const where = { path: target.path, size: target.size, isBlockDevice: target.isBlockDevice };
  const workers = Array.from({ length: job.numjobs }, (_, stream) =>
    new Worker(__filename, { workerData: { blockringJob: one, target: where, stream } }));
  const messages = await Promise.all(workers.map(async (w) => {
    const [m] = (await Promise.race([once(w, 'message'), once(w, 'error').then(([e]) => Promise.reject(e))])) as [JobMessage];
    return m;
  }));
  const elapsedMs = (nowNs() - start) / 1e6;
  const hist = new LatencyHistogram();
  const counts: Counts = { reads: 0, writes: 0, errors: 0 };
  for (const m of messages) {
    hist.merge(m.hist);
    counts.reads += m.result.reads;
    counts.writes += m.result.writes;
    counts.errors += m.result.errors;
  }
  const r = makeResult(messages[0]!.result.contender, job, counts, hist, elapsedMs, process.cpuUsage(cpu));
  // Jobs start and stop within a few ms of each other; rate over the slowest.
  r.iops = messages.reduce((sum, m) => sum + m.result.iops, 0);
  r.bw = messages.reduce((sum, m) => sum + m.result.bw, 0);
  return r;
}

async function runOne(job: JobSpec, target: Target, stream: number): Promise<JobResult> {
  let depth = 1;
  while (depth < job.iodepth) depth *= 2;
  // The engine name goes to the ring as given: a missing engine reports its own error.
  const ring = new Ring({
    engine: job.engine as EngineName, depth: Math.min(depth, 32768), pollMicros: job.pollMicros,
    ...(job.threads ? { threads: job.threads } : {}),
    ...(job.engine === 'null' ? { nullEngine: { latencyUs: job.nullLatencyUs } } : {}),
  });
  try {
    const readOnly = job.rw === 'read' || job.rw === 'randread';
    const dev = await ring.open(target.path, { direct: job.direct, readOnly });
    const size = target.isBlockDevice ? Math.min(target.size || dev.size, dev.size) : target.size;
    const run = job.api === 'raw' ? runRaw : job.api === 'batch' ? runBatch : runPromise;
    const r = await run(ring, dev, job, new Workload(job, size, stream));
    r.contender = `blockring ${job.api} (${ring.engine})`;
    return r;
  } finally {
    await ring.close();
  }
}

// Shared bookkeeping: when to stop, and RSS samples for --requests.
class Run {
  readonly hist = new LatencyHistogram();
  readonly counts: Counts = { reads: 0, writes: 0, errors: 0 };
  firstError: unknown = null;
  issued = 0;
  stop = false;
  readonly #deadline: number;
  readonly #limit: number;
  readonly #warmAt: number;
  readonly #start = nowNs();
  readonly #cpu = process.cpuUsage();
  readonly #rssStart = process.memoryUsage.rss();
  #rssWarm = 0;

  constructor(readonly job: JobSpec) {
    this.#deadline = this.#start + job.runtime * 1e9;
    this.#limit = job.requests;
    this.#warmAt = Math.min(100_000, Math.ceil(job.requests / 100));
  }

  /** Whether another request may be issued; counts it if so. */
  take(now: number): boolean {
    if (this.stop) return false;
    if (this.#limit ? this.issued >= this.#limit : now >= this.#deadline) {
      this.stop = true;
      return false;
    }
    if (this.issued === this.#warmAt && this.#limit) this.#rssWarm = process.memoryUsage.rss();
    this.issued++;
    return true;
  }

  done(bytes: number, expected: number, write: boolean, error: unknown): void {
    if (error !== null || bytes !== expected) {
      this.counts.errors++;
      this.firstError ??= error ?? new Error(`short transfer: ${bytes} of ${expected} bytes`);
      this.stop = true;
    } else if (write) {
      this.counts.writes++;
    } else {
      this.counts.reads++;
    }
  }

  result(note?: string): JobResult {
    const elapsedMs = (nowNs() - this.#start) / 1e6;
    const r = makeResult('', this.job, this.counts, this.hist, elapsedMs, process.cpuUsage(this.#cpu));
    if (this.#limit) {
      const end = process.memoryUsage.rss();
      r.rss = { start: this.#rssStart, warm: this.#rssWarm || this.#rssStart, end };
    }
    if (note) r.note = note;
    if (this.firstError) throw this.firstError;
    histograms.set(r, this.hist);
    return r;
  }
}

// One async loop per in-flight slot: the way most code uses a Promise API.
async function runPromise(_ring: Ring, dev: BlockDevice, job: JobSpec, w: Workload): Promise<JobResult> {
  const mem = alignedBuffer(job.iodepth * job.bs);
  const run = new Run(job);
  const lane = async (slot: number): Promise<void> => {
    const buf = mem.subarray(slot * job.bs, (slot + 1) * job.bs);
    let t = nowNs();
    while (run.take(t)) {
      w.next();
      const write = w.write;
      let n = 0;
      let err: unknown = null;
      const t0 = nowNs();
      try {
        n = write ? await dev.write(buf, w.offset) : await dev.read(buf, w.offset);
      } catch (e) {
        err = e;
      }
      t = nowNs();
      run.hist.record(t - t0);
      run.done(n, job.bs, write, err);
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < job.iodepth; i++) lanes.push(lane(i));
  await Promise.all(lanes);
  return run.result();
}

// iodepth / batch lanes, each awaiting one ring.submit() of `batch` requests.
async function runBatch(ring: Ring, dev: BlockDevice, job: JobSpec, w: Workload): Promise<JobResult> {
  const mem = alignedBuffer(job.iodepth * job.bs);
  const run = new Run(job);
  const lane = async (first: number, count: number): Promise<void> => {
    const reqs = Array.from({ length: count }, (_, k) => ({
      op: 'read' as 'read' | 'write',
      dev,
      buffer: mem.subarray((first + k) * job.bs, (first + k + 1) * job.bs),
      offset: 0,
    }));
    const batch: typeof reqs = [];
    let t = nowNs();
    for (;;) {
      batch.length = 0;
      for (const r of reqs) {
        if (!run.take(t)) break;
        w.next();
        r.op = w.write ? 'write' : 'read';
        r.offset = w.offset;
        batch.push(r);
      }
      if (batch.length === 0) return;
      const t0 = nowNs();
      const results = await ring.submit(batch);
      t = nowNs();
      run.hist.recordN(t - t0, batch.length);
      for (let k = 0; k < batch.length; k++) {
        run.done(results[k]!.bytes, job.bs, batch[k]!.op === 'write', results[k]!.error ?? null);
      }
    }
  };
  const lanes: Promise<void>[] = [];
  for (let first = 0; first < job.iodepth; first += job.batch) lanes.push(lane(first, Math.min(job.batch, job.iodepth - first)));
  await Promise.all(lanes);
  return run.result('batch API: clat is per batch, from ring.submit() until its promise resolves');
}

// Records in ring.raw.sq, one registered buffer, completions in batches.
// Each slot is resubmitted from the completion callback, so iodepth stay in flight.
function runRaw(ring: Ring, dev: BlockDevice, job: JobSpec, w: Workload): Promise<JobResult> {
  const raw = ring.raw;
  if (job.iodepth > raw.capacity) throw new RangeError(`--iodepth for --api raw is at most ${raw.capacity}`);
  const mem = alignedBuffer(job.iodepth * job.bs);
  const registered = raw.registerBuffers([mem], { fixed: job.fixed });
  const sq = raw.sq;
  const submitted = new Float64Array(job.iodepth); // per slot: when its request was submitted
  const isWrite = new Uint8Array(job.iodepth);
  const bs = job.bs;
  const run = new Run(job);
  let inflight = 0;
  let records = 0;
  const every = job.orderedEvery;

  const prepare = (slot: number, id: number): void => {
    w.next();
    isWrite[id] = w.write ? 1 : 0;
    const tag = every && ++records % every === 0 ? TAG.ordered : TAG.simple;
    raw.prepare(slot, id, w.write ? OP.write : OP.read, dev, 0, id * bs, bs, w.offset, tag);
  };
  const submit = (count: number): void => {
    raw.submit(count);
    // One timestamp per submission call, taken after it returns: fio's
    // clat for io_uring also starts after io_uring_enter(). Inside a
    // completion callback the records only queue, and reach the kernel when
    // the callback returns, so clat there includes the rest of the callback.
    const t = nowNs();
    for (let j = 0; j < count; j++) submitted[sq[j * 8]!] = t;
    inflight += count;
  };
  // Records fill slots 0..chunk-1; a full chunk is submitted at once.
  const chunk = job.submitBatch || job.iodepth;
  let pending = 0;
  const add = (id: number): void => {
    prepare(pending++, id);
    if (pending === chunk) {
      submit(pending);
      pending = 0;
    }
  };
  const flush = (): void => {
    if (pending) submit(pending);
    pending = 0;
  };

  return new Promise<JobResult>((resolve, reject) => {
    raw.onComplete = (cq, count) => {
      try {
        const t = nowNs();
        for (let i = 0; i < count; i++) {
          const id = cq[i * 4]!;
          const res = cq[i * 4 + 1]!;
          run.hist.record(t - submitted[id]!);
          run.done(res < 0 ? 0 : res, bs, isWrite[id] === 1, res < 0 ? new Error(`raw request failed: errno ${-res}`) : null);
          inflight--;
          if (run.take(t)) add(id);
        }
        flush();
        if (inflight === 0) {
          raw.onComplete = null;
          const unfixed = job.fixed && !registered && ring.engine === 'io_uring' ? '; fixed buffers: kernel registration failed, plain buffers used' : '';
          resolve(run.result(`raw API: one timestamp per submission call and per completion callback${unfixed}`));
        }
      } catch (e) {
        raw.onComplete = null;
        reject(e);
      }
    };
    const t = nowNs();
    for (let id = 0; id < job.iodepth && run.take(t); id++) add(id);
    flush();
  });
}

// A job of --numjobs, on its worker thread.
if (!isMainThread && (workerData as { blockringJob?: JobSpec } | null)?.blockringJob) {
  const d = workerData as { blockringJob: JobSpec; target: Omit<Target, 'cleanup'>; stream: number };
  void runOne(d.blockringJob, { ...d.target, cleanup() {} }, d.stream).then((result) => {
    const message: JobMessage = { result, hist: histograms.get(result)!.snapshot() };
    parentPort!.postMessage(message);
  });
}
