// What every runner shares: the offset sequence, the target file, aligned
// buffers, and the result record.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { allocAligned } from '../lib/index';

import type { LatencyHistogram } from './histogram';
import type { JobSpec } from './options';

export const DEFAULT_SIZE = 256 * 1024 * 1024;

/** The offset and direction of each next request, as fio would pick them. */
export class Workload {
  offset = 0;
  write = false;
  readonly #bs: number;
  readonly #blocks: number;
  readonly #random: boolean;
  readonly #readPct: number;
  #cursor = 0;
  #seed = 0x9e3779b9;

  /** stream: the job's index with --numjobs, so each job picks its own offsets. */
  constructor(job: JobSpec, size: number, stream = 0) {
    this.#seed = (this.#seed + Math.imul(stream, 0x85ebca6b)) | 0;
    this.#bs = job.bs;
    this.#blocks = Math.floor(size / job.bs);
    if (this.#blocks < 1) throw new Error(`--size ${size} is smaller than --bs ${job.bs}`);
    this.#random = job.rw.startsWith('rand');
    this.#readPct = job.rw === 'randrw' ? job.rwmixread : job.rw.endsWith('read') ? 100 : 0;
  }

  // mulberry32: cheap, and plenty for picking blocks (fio's default is tausworthe).
  #rand(): number {
    let t = (this.#seed = (this.#seed + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  next(): void {
    let block: number;
    if (this.#random) {
      block = Math.floor(this.#rand() * this.#blocks);
    } else {
      block = this.#cursor;
      if (++this.#cursor === this.#blocks) this.#cursor = 0;
    }
    this.offset = block * this.#bs;
    this.write = this.#readPct === 100 ? false : this.#readPct === 0 ? true : this.#rand() * 100 >= this.#readPct;
  }
}

/** Aligned memory for O_DIRECT (allocAligned), filled with distinct non-zero data for writes. */
export function alignedBuffer(bytes: number): Uint8Array {
  const view = allocAligned(bytes, 4096);
  for (let i = 0; i < bytes; i += 4096) view[i] = ((i >>> 12) & 0xff) | 1;
  return view;
}

export interface Target {
  path: string;
  size: number;
  isBlockDevice: boolean;
  /** Removes the file if the bench created it as a temporary. */
  cleanup(): void;
}

/**
 * The file the jobs run on. With no --filename: a temporary file, filled with
 * data (so reads hit allocated blocks, not holes) and removed by cleanup().
 * A named file is created and filled if missing or short, and kept.
 */
export function prepareTarget(filename: string, size: number): Target {
  let file = filename;
  let dir: string | null = null;
  if (!file) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-bench-'));
    file = path.join(dir, 'bench.dat');
  }
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st?.isBlockDevice()) {
    return { path: file, size: size || blockDeviceSize(st.rdev), isBlockDevice: true, cleanup() {} };
  }
  const want = size || DEFAULT_SIZE;
  if (!st || st.size < want) fill(file, st?.size ?? 0, want);
  return {
    path: file,
    size: want,
    isBlockDevice: false,
    cleanup() {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// /sys/dev/block/MAJ:MIN/size counts 512-byte sectors whatever the block size.
function blockDeviceSize(rdev: number): number {
  const major = (rdev >> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512;
}

function fill(file: string, from: number, to: number): void {
  const chunk = Buffer.allocUnsafe(1 << 20);
  let x = 0x12345678;
  for (let i = 0; i < chunk.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    chunk.writeInt32LE(x | 0, i);
  }
  const fd = fs.openSync(file, 'a+');
  try {
    for (let off = from; off < to; off += chunk.length) {
      const n = Math.min(chunk.length, to - off);
      fs.writeSync(fd, chunk, 0, n, off);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** One job's outcome, in the units fio reports. */
export interface JobResult {
  contender: string;
  job: JobSpec;
  ios: number;
  reads: number;
  writes: number;
  bytes: number;
  readBytes: number;
  writeBytes: number;
  errors: number;
  elapsedMs: number;
  iops: number;
  /** Bytes per second. */
  bw: number;
  /** Completion latency, microseconds. */
  clat: { p50: number; p99: number; p999: number; max: number; mean: number };
  /** CPU time (ms) and share of elapsed time (%), user and system, like fio's usr_cpu/sys_cpu. */
  cpu: { userMs: number; systemMs: number; usr: number; sys: number };
  /**
   * With --requests: resident set size (bytes) before the first request,
   * after the warm-up (1% of the requests, at most 100,000), and after the last.
   */
  rss?: { start: number; warm: number; end: number };
  /** How clat was taken, where it differs from per-request timestamps. */
  note?: string;
}

export interface Counts {
  reads: number;
  writes: number;
  errors: number;
}

export function makeResult(contender: string, job: JobSpec, counts: Counts, hist: LatencyHistogram,
  elapsedMs: number, cpu: NodeJS.CpuUsage): JobResult {
  const ios = counts.reads + counts.writes;
  const us = (ns: number): number => Math.round(ns / 10) / 100;
  return {
    contender,
    job,
    ios,
    reads: counts.reads,
    writes: counts.writes,
    bytes: ios * job.bs,
    readBytes: counts.reads * job.bs,
    writeBytes: counts.writes * job.bs,
    errors: counts.errors,
    elapsedMs: Math.round(elapsedMs * 1000) / 1000,
    iops: Math.round((ios / elapsedMs) * 1000),
    bw: Math.round(((ios * job.bs) / elapsedMs) * 1000),
    clat: {
      p50: us(hist.percentile(50)),
      p99: us(hist.percentile(99)),
      p999: us(hist.percentile(99.9)),
      max: us(hist.max),
      mean: us(hist.mean),
    },
    cpu: {
      userMs: Math.round(cpu.user / 1000),
      systemMs: Math.round(cpu.system / 1000),
      usr: Math.round((cpu.user / 10 / elapsedMs) * 10) / 10,
      sys: Math.round((cpu.system / 10 / elapsedMs) * 10) / 10,
    },
  };
}

/** Monotonic nanoseconds as a double (cheaper than hrtime.bigint()). */
export function nowNs(): number {
  return performance.now() * 1e6;
}
