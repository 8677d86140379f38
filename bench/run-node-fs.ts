// The baseline most Node code uses: node:fs/promises FileHandle.read/write.
// libuv runs them on its thread pool, or on its own io_uring when the
// process starts with UV_USE_IO_URING=1 (--compare runs both as children).
import fs from 'node:fs';
import { open } from 'node:fs/promises';

import { LatencyHistogram } from './histogram';
import type { JobSpec } from './options';
import { alignedBuffer, makeResult, nowNs, Workload, type Counts, type JobResult, type Target } from './workload';

export async function runNodeFs(job: JobSpec, target: Target): Promise<JobResult> {
  if (job.requests) throw new Error('--requests is for blockring APIs only');
  const c = fs.constants;
  const readOnly = job.rw === 'read' || job.rw === 'randread';
  const fh = await open(target.path, (readOnly ? c.O_RDONLY : c.O_RDWR) | (job.direct ? c.O_DIRECT : 0));
  try {
    const w = new Workload(job, target.size);
    const mem = alignedBuffer(job.iodepth * job.bs);
    const hist = new LatencyHistogram();
    const counts: Counts = { reads: 0, writes: 0, errors: 0 };
    const start = nowNs();
    const deadline = start + job.runtime * 1e9;
    const cpu = process.cpuUsage();
    let firstError: unknown = null;
    const lane = async (slot: number): Promise<void> => {
      const buf = mem.subarray(slot * job.bs, (slot + 1) * job.bs);
      let t = start;
      while (t < deadline && !firstError) {
        w.next();
        const write = w.write;
        const t0 = nowNs();
        try {
          const n = write
            ? (await fh.write(buf, 0, job.bs, w.offset)).bytesWritten
            : (await fh.read(buf, 0, job.bs, w.offset)).bytesRead;
          if (n !== job.bs) throw new Error(`short transfer: ${n} of ${job.bs} bytes`);
          if (write) counts.writes++;
          else counts.reads++;
        } catch (e) {
          counts.errors++;
          firstError ??= e;
        }
        t = nowNs();
        hist.record(t - t0);
      }
    };
    const lanes: Promise<void>[] = [];
    for (let i = 0; i < job.iodepth; i++) lanes.push(lane(i));
    await Promise.all(lanes);
    if (firstError) throw firstError;
    const uring = process.env.UV_USE_IO_URING === '1';
    return makeResult(uring ? 'node:fs UV_USE_IO_URING=1' : 'node:fs/promises', job, counts, hist,
      (nowNs() - start) / 1e6, process.cpuUsage(cpu));
  } finally {
    await fh.close();
  }
}
