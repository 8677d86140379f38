import os from 'node:os';
import { checkCacheSize, checkFormat, checkWriteLog, type ImageFormat, openQcow2 } from './format/image';
import type { WriteLog } from './write-log';
import { Qcow2Device, type BackingDevice, type HostFile } from './format/qcow2';

import { BlockDevice, DeviceTarget, type DeviceOwner, type NormalizedRequest, type RequestBuffers } from './block-device';
import { abortError, type AbortError, BlockIoError, BlockringError, checkSignal, deviceClosed, fromNative, rejectOnAbort } from './errors';
import { BufferPool } from './aligned';
import { native, type DeviceInfo, type NativeNullOptions, type RecordFailure, type RingHandle } from './native';
import { normalizeNullEngine, type NullEngineOptions } from './null-engine';
import { queueSubmit, submitted } from './queued-requests';
import { RawQueue } from './raw-queue';
import {
  CQ_COMPLETED, CQ_ISSUED, CQ_RESULT, CQ_STRIDE, CQ_SYSCALL, RAW_CQ_STRIDE, FLAG, OP, opWord, SQ_BUFCOUNT, SQ_BUFFER, SQ_DEVICE, SQ_ID,
  SQ_LENGTH, SQ_OFFSET, SQ_OPWORD, SQ_STRIDE,
} from './records';
import { checkBool, checkOptions, checkUint, checkIoView, checkViews, rangeError, typeError } from './validate';

export type EngineName = 'auto' | 'io_uring' | 'libaio' | 'threads' | 'mmap' | 'null';
export const ENGINES: readonly string[] = ['auto', 'io_uring', 'libaio', 'threads', 'mmap', 'null'];

/** Which engine a ring runs on, and why `auto` passed over the others. */
export interface EngineInfo {
  /** The engine in use: 'io_uring', 'libaio', 'threads', 'mmap' or 'null'. */
  name: string;
  /** The engine asked for (option, $BLOCKRING_ENGINE, or 'auto'). */
  requested: string;
  /** Why `auto` did not pick the engines before it; null when it did not fall back. */
  fallbackReason: string | null;
  /**
   * Optional kernel features in use (io_uring: 'single-issuer', 'defer-taskrun',
   * 'no-sqarray', 'ring-fd'; each probed, and left out on kernels without it).
   */
  features: string[];
}

export interface RingOptions {
  /** Requests in the kernel at once; more wait in a userspace queue. Default 256. */
  depth?: number;
  /** Default 'auto' (or $BLOCKRING_ENGINE). See README "Engines". */
  engine?: EngineName;
  /** Worker threads of the threads engine (and libaio's helper). Default 4. */
  threads?: number;
  /**
   * io_uring: most SQEs per submission syscall when a batch holds O_DIRECT
   * requests (0: no limit). Default 2: the block layer plugs larger
   * submissions, holding the device back until the whole batch is issued.
   */
  directSubmitBatch?: number;
  /** Attach issue/completion sequence numbers to batch results. */
  trace?: boolean;
  /** With engine 'null': latency and fault injection (see README "null engine"). */
  nullEngine?: NullEngineOptions;
  /**
   * How completions reach this thread: 'uv-poll' watches the eventfd on the
   * libuv loop; 'thread' has a native thread wait on it and hand wakeups over
   * through a thread-safe function. Default 'auto' (or $BLOCKRING_COMPLETIONS):
   * 'thread' under Bun and Deno, whose libuv emulation cannot poll, else 'uv-poll'.
   */
  completions?: CompletionsMode;
  /**
   * Polling mode, io_uring only (default 0: off). After a batch of completion
   * callbacks has submitted its requests, the ring's thread spins up to this
   * many microseconds for the next completion instead of sleeping in the
   * event loop: lower latency at depth 1, for a CPU kept busy meanwhile and
   * an event loop that waits (at most 64 spins per wakeup).
   */
  pollMicros?: number;
}

export type CompletionsMode = 'auto' | 'uv-poll' | 'thread';
const COMPLETIONS: readonly string[] = ['auto', 'uv-poll', 'thread'];

/** 'thread' where libuv polling is missing (Bun: uv_poll_init aborts) or broken (Deno: polls once). */
function autoCompletions(): 'uv-poll' | 'thread' {
  const versions = process.versions as Record<string, string | undefined>;
  return versions.bun !== undefined || versions.deno !== undefined ? 'thread' : 'uv-poll';
}

export interface OpenOptions {
  readOnly?: boolean;
  /** Create the file if it does not exist. */
  create?: boolean;
  /** O_DIRECT: bypass the page cache. Requests must then be aligned (see `dev.offsetAlignment`). */
  direct?: boolean;
  /** Grow a smaller file to this size on open. */
  size?: number;
  /** Writes past the end extend the file (files only); otherwise they are refused. */
  growable?: boolean;
  /** O_EXCL on block devices, an exclusive OFD lock on files: a second exclusive opener fails with EBUSY. */
  exclusive?: boolean;
  /** Image format: 'raw' (default) or 'qcow2'. Never probed from the file. */
  format?: ImageFormat;
  /** qcow2: bytes of L2 tables and refcount blocks cached per image (default 4 MiB). */
  cacheSize?: number;
  /** qcow2: record every write and flush to the image file (not its backing) in this log. */
  writeLog?: WriteLog;
}

export type RequestOp = 'read' | 'write' | 'readv' | 'writev' | 'flush' | 'discard' | 'writeZeroes';

export interface BatchRequest {
  op: RequestOp;
  dev: BlockDevice | Qcow2Device;
  buffer?: ArrayBufferView;
  buffers?: ArrayBufferView[];
  offset?: number | bigint;
  length?: number | bigint;
  tag?: 'simple' | 'ordered' | 'head';
  fua?: boolean;
  metadata?: boolean;
  unmap?: boolean;
  /** Aborting it fails this request alone with an AbortError (see README "Cancellation"). */
  signal?: AbortSignal;
}

export interface SubmitOptions {
  /** Aborting it rejects the whole submit() with an AbortError (see README "Cancellation"). */
  signal?: AbortSignal;
}

export interface RequestResult {
  /** Bytes transferred (read/write), bytes covered (discard/writeZeroes), 0 for flush or on error. */
  bytes: number;
  /** The request failed (BlockIoError, BlockringError), or its `signal` aborted it (AbortError). */
  error?: BlockIoError | BlockringError | AbortError;
  /** With `trace`: ring-wide sequence number when the request was issued to the engine. */
  issued?: number;
  /** With `trace`: ring-wide sequence number when it completed. */
  completed?: number;
}

interface Batch {
  results: RequestResult[];
  remaining: number;
  resolve: (r: RequestResult[]) => void;
}

/**
 * Settles a request's Promise with an error made at completion, with the
 * caller's stack. The stack is captured in a reaction of a promise the
 * request's Promise has adopted, and V8 walks from there to the async
 * functions awaiting it: the frames an error made in the completion callback
 * lacks. So the success path needs no async wrapper per call (dev.read and
 * dev.write return the request's Promise itself).
 */
function rejectWithCallerStack(resolve: (value: PromiseLike<number>) => void, err: Error): void {
  let reject!: (e: Error) => void;
  const source = new Promise<number>((_, r) => {
    reject = r;
  });
  resolve(source.then(undefined, withCallerStack));
  // Rejected once the adoption is done, so the awaiting caller is in the chain.
  queueMicrotask(() => reject(err));
}

function withCallerStack(e: unknown): never {
  if (e instanceof Error) Error.captureStackTrace(e, withCallerStack);
  throw e;
}

// One request from #enqueue to its completion: its buffers (referenced
// here until the engine is done with them: the native side only holds their
// memory), what its error names, and who hears the result (a single
// request's promise, or its batch's slot). The one object per request the
// ring keeps; its record holds the rest.
class Pending {
  /** Aborted after it reached the engine: its completion is only bookkeeping. */
  aborted = false;
  /** Removes the abort listener. */
  unlisten: (() => void) | null = null;
  /** Runs when the engine is done with it (after an abort too), or it was dropped unsubmitted. */
  ended: (() => void) | null = null;

  constructor(
    readonly dev: DeviceTarget, readonly opName: string, readonly buffers: RequestBuffers,
    readonly offset: number, readonly length: number, readonly signal: AbortSignal | null,
    readonly resolve: ((value: number | PromiseLike<number>) => void) | null,
    readonly batch: Batch | null, readonly index: number,
  ) {}
}

const RING_KEYS = ['depth', 'engine', 'threads', 'directSubmitBatch', 'trace', 'nullEngine', 'completions', 'pollMicros'] as const;
const OPEN_KEYS = ['readOnly', 'create', 'direct', 'size', 'growable', 'exclusive', 'format', 'cacheSize', 'writeLog'] as const;
const REQUEST_KEYS = ['op', 'dev', 'buffer', 'buffers', 'offset', 'length', 'tag', 'fua', 'metadata', 'unmap', 'signal'] as const;
const SUBMIT_KEYS = ['signal'] as const;

const SQ_INITIAL = 256;
const RAW_SQ_CAPACITY = 4096;
const CQ_CAPACITY = 4096;
const OPS: Record<RequestOp, number> = {
  read: OP.read, write: OP.write, readv: OP.read, writev: OP.write,
  flush: OP.flush, discard: OP.discard, writeZeroes: OP.writeZeroes,
};

// Aborting a submitted batch: every request is in the engine, so the results
// are discarded (buffers stay pinned until completion).
const withSignal = rejectOnAbort;

/**
 * One io_uring instance (or fallback engine) bound to the event loop of the
 * thread that created it. Completions arrive through an eventfd: one
 * callback per wakeup delivers every completion reaped.
 */
export class Ring implements DeviceOwner {
  readonly #h: RingHandle;
  #sq = new Float64Array(SQ_INITIAL * SQ_STRIDE);
  readonly #cq = new Float64Array(CQ_CAPACITY * CQ_STRIDE);
  readonly #trace: boolean;
  readonly #raw: RawQueue;
  readonly #devices = new Map<BlockDevice, DeviceTarget>();
  readonly #images = new Set<Qcow2Device>();
  readonly #imageHandles = new Map<number, Qcow2Device>(); // native image handles (whole chains)
  #pending: (Pending | undefined)[] = [];
  #freeIds: number[] = [];
  #queued = 0;
  #queuedBuffers: ArrayBufferView[] = [];
  #submitScheduled = false;
  #closing: Promise<void> | null = null;
  #waiters: (() => boolean)[] = [];

  constructor(options: RingOptions = {}) {
    const o = checkOptions(options, 'options', RING_KEYS);
    const depth = o.depth === undefined ? 256 : checkUint(o.depth, 'options.depth');
    if (depth < 1 || depth > native.maxDepth || (depth & (depth - 1)) !== 0) {
      throw rangeError('ERR_OUT_OF_RANGE', `options.depth must be a power of two from 1 to ${native.maxDepth}, got ${depth}`);
    }
    const engine = o.engine ?? process.env.BLOCKRING_ENGINE ?? 'auto';
    if (typeof engine !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'options.engine must be a string');
    if (!ENGINES.includes(engine)) {
      throw typeError('ERR_INVALID_ARG_VALUE', `unknown engine '${engine}' (expected one of ${ENGINES.join(', ')})`);
    }
    const threads = o.threads === undefined ? 4 : checkUint(o.threads, 'options.threads');
    if (threads < 1 || threads > native.maxThreads) {
      throw rangeError('ERR_OUT_OF_RANGE', `options.threads must be from 1 to ${native.maxThreads}, got ${threads}`);
    }
    const directSubmitBatch = o.directSubmitBatch === undefined ? 2 : checkUint(o.directSubmitBatch, 'options.directSubmitBatch');
    if (directSubmitBatch > native.maxDirectSubmitBatch) {
      throw rangeError('ERR_OUT_OF_RANGE',
        `options.directSubmitBatch must be at most ${native.maxDirectSubmitBatch}, got ${directSubmitBatch}`);
    }
    const pollMicros = o.pollMicros === undefined ? 0 : checkUint(o.pollMicros, 'options.pollMicros');
    if (pollMicros > 1e6) throw rangeError('ERR_OUT_OF_RANGE', `options.pollMicros must be at most 1000000, got ${pollMicros}`);
    let nullEngine: NativeNullOptions | undefined;
    if (engine === 'null') nullEngine = normalizeNullEngine(o.nullEngine);
    else if (o.nullEngine !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', "options.nullEngine needs engine 'null'");
    this.#trace = checkBool(o.trace, 'options.trace');
    const mode = o.completions ?? process.env.BLOCKRING_COMPLETIONS ?? 'auto';
    if (typeof mode !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'options.completions must be a string');
    if (!COMPLETIONS.includes(mode)) {
      throw typeError('ERR_INVALID_ARG_VALUE',
        `unknown completions mode '${mode}' (expected one of ${COMPLETIONS.join(', ')})`);
    }
    const completions = mode === 'auto' ? autoCompletions() : (mode as 'uv-poll' | 'thread');
    const rawSq = new Float64Array(RAW_SQ_CAPACITY * SQ_STRIDE);
    const rawCq = new Float64Array(CQ_CAPACITY * RAW_CQ_STRIDE);
    this.#h = new native.RingHandle({
      engine, depth, threads, directSubmitBatch, trace: this.#trace, nullEngine, completions, pollMicros,
      uringFeatures: process.env.BLOCKRING_IO_URING, cq: this.#cq, rawSq, rawCq,
      onComplete: (n, nraw) => this.#onComplete(n, nraw),
    });
    this.#raw = new RawQueue(this.#h, rawSq, rawCq);
  }

  /** The engine in use: 'io_uring', 'libaio', 'threads', 'mmap' or 'null'. */
  get engine(): string {
    return this.#h.engine;
  }

  /** The engine in use, what was asked for, and why `auto` fell back (if it did). */
  get engineInfo(): EngineInfo {
    return this.#h.engineInfo;
  }

  /** Requests the kernel holds at once (the submission queue size). */
  get depth(): number {
    return this.#h.depth;
  }

  /** How completions reach this thread: 'uv-poll' or 'thread' (see `RingOptions.completions`). */
  get completions(): 'uv-poll' | 'thread' {
    return this.#h.completions;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  /** The low-level interface (typed-array records, registered buffers). */
  get raw(): RawQueue {
    return this.#raw;
  }

  /** Opens a file or block device on this ring; with `format: 'qcow2'` a qcow2 image and its backing chain. */
  open(path: string, options: OpenOptions & { format: 'qcow2' }): Promise<Qcow2Device>;
  open(path: string, options?: OpenOptions): Promise<BlockDevice>;
  async open(path: string, options: OpenOptions = {}): Promise<BlockDevice | Qcow2Device> {
    if (typeof path !== 'string' || path.length === 0) {
      throw typeError('ERR_INVALID_ARG_TYPE', 'path must be a non-empty string');
    }
    const o = checkOptions(options, 'options', OPEN_KEYS);
    if (checkFormat(o.format, 'options.format') === 'qcow2') {
      for (const k of ['create', 'size', 'growable'] as const) {
        if (o[k] !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', `options.${k} does not apply to a qcow2 image (use createImage)`);
      }
      const cacheSize = checkCacheSize(o.cacheSize);
      const flags = { readOnly: checkBool(o.readOnly, 'options.readOnly'), direct: checkBool(o.direct, 'options.direct'),
        exclusive: checkBool(o.exclusive, 'options.exclusive'), cacheSize, writeLog: checkWriteLog(o.writeLog) };
      this.#checkOpen();
      const image = await openQcow2((p, f) => this.open(p, f), path, flags, [], this.#attachImage);
      this.#images.add(image);
      return image;
    }
    const readOnly = checkBool(o.readOnly, 'options.readOnly');
    const create = checkBool(o.create, 'options.create');
    const direct = checkBool(o.direct, 'options.direct');
    const growable = checkBool(o.growable, 'options.growable');
    const exclusive = checkBool(o.exclusive, 'options.exclusive');
    const size = o.size === undefined ? undefined : checkUint(o.size, 'options.size');
    const writeLog = checkWriteLog(o.writeLog);
    this.#checkOpen();
    // The addon opens (O_CLOEXEC), owns and closes the fd: never node:fs,
    // whose worker fd tracking would close the number again at worker exit.
    let info: DeviceInfo;
    try {
      info = await this.#h.openDevice(path, {
        readOnly, create, direct, exclusive, growable, size,
        probeAlignment: process.env.BLOCKRING_PROBE_ALIGNMENT === '1',
      });
    } catch (e) {
      throw fromNative(e, path);
    }
    if (writeLog) this.#h.attachLog(info.handle, writeLog._native);
    const target = new DeviceTarget(info.handle, path);
    const dev = new BlockDevice(this, target, info, direct);
    dev._writeLogged = writeLog !== undefined;
    this.#devices.set(dev, target);
    return dev;
  }

  /**
   * Registers a BufferPool's buffers with the ring (they become the raw
   * interface's registered table too). On io_uring, requests whose buffer
   * lies in the pool then use fixed buffers. Returns whether the kernel
   * registration took effect.
   */
  registerPool(pool: BufferPool): boolean {
    if (!(pool instanceof BufferPool)) throw typeError('ERR_INVALID_ARG_TYPE', 'pool must be a BufferPool');
    this.#checkOpen();
    return this.#raw.registerBuffers(pool.buffers as Buffer[], { fixed: true });
  }

  /**
   * Submits many requests with one submission syscall. Resolves, when all
   * have completed, to one result per request (errors are reported per
   * request, never by rejecting). Invalid requests reject before any is
   * submitted.
   */
  submit(requests: BatchRequest[], options?: SubmitOptions): Promise<RequestResult[]> {
    let normalized: NormalizedRequest[];
    let signal: AbortSignal | null;
    try {
      signal = checkSignal(checkOptions(options, 'options', SUBMIT_KEYS).signal, 'options.signal');
      if (signal?.aborted) throw abortError(signal);
    } catch (e) {
      return Promise.reject(e);
    }
    if (Array.isArray(requests) && requests.some((r) => (r as { dev?: unknown } | null)?.dev instanceof Qcow2Device)) {
      return withSignal(this.#submitWithImages(requests), signal);
    }
    try {
      this.#checkOpen();
      normalized = this.#normalizeBatch(requests);
    } catch (e) {
      return Promise.reject(e);
    }
    if (normalized.length === 0) return Promise.resolve([]);
    // Earlier single requests go first (they are older), then the batch as
    // one atomic submission.
    this.#submitQueued();
    const done = new Promise<RequestResult[]>((resolve, reject) => {
      const batch: Batch = { results: new Array<RequestResult>(normalized.length), remaining: normalized.length, resolve };
      for (let i = 0; i < normalized.length; i++) {
        const r = normalized[i]!;
        this.#enqueue(new Pending(r.dev, r.opName, r.buffers, r.offset, r.length, r.signal, null, batch, i), r.op, r.tag, r.flags);
      }
      const failure = this.#submitQueued(true);
      if (failure) reject(failure);
    });
    return withSignal(done, signal);
  }

  /** `await using ring = new Ring()`: close() at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // A batch naming qcow2 devices: every request is validated first (all or
  // nothing), then the raw ones go as one native batch and the qcow2 ones to
  // their devices in array order (their tags apply per device, as always).
  async #submitWithImages(requests: BatchRequest[]): Promise<RequestResult[]> {
    this.#checkOpen();
    const plain: BatchRequest[] = [];
    const where: number[] = [];
    const image: Array<() => Promise<number>> = [];
    const imageAt: number[] = [];
    requests.forEach((r, i) => {
      const dev = r.dev as unknown;
      if (dev instanceof Qcow2Device) {
        if (!this.#images.has(dev)) throw typeError('ERR_INVALID_ARG_VALUE', `requests[${i}].dev must be a device opened on this ring`);
        image.push(dev._prepare(checkOptions(r, `requests[${i}]`, REQUEST_KEYS), `requests[${i}]`));
        imageAt.push(i);
      } else {
        plain.push(r);
        where.push(i);
      }
    });
    if (plain.length) this.#normalizeBatch(plain);
    const out = new Array<RequestResult>(requests.length);
    await Promise.all([
      (plain.length ? this.submit(plain) : Promise.resolve([])).then((res) => res.forEach((r, k) => (out[where[k]!] = r))),
      ...image.map((run, k) => run().then((bytes) => (out[imageAt[k]!] = { bytes }),
        (error: BlockringError) => (out[imageAt[k]!] = { bytes: 0, error }))),
    ]);
    return out;
  }

  /** Waits for every request, closes every device, then the ring. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        // Images first: they write back metadata through their file devices.
        await Promise.all([...this.#images].map((d) => d.close().catch(() => undefined)));
        await Promise.all([...this.#devices.keys()].map((d) => d.close()));
        await this.#until(() => this.#queued === 0 && this.#h.inflight() === 0);
        this.#h.close();
      })();
    }
    return this.#closing;
  }

  /** @internal One request, checked by its device; resolves to its result. */
  _request(dev: DeviceTarget, op: number, opName: string, tag: number, flags: number, buffers: RequestBuffers,
    offset: number, length: number, signal: AbortSignal | null, ended: (() => void) | null = null): Promise<number> {
    return new Promise<number>((resolve) => {
      const p = new Pending(dev, opName, buffers, offset, length, signal, resolve, null, 0);
      p.ended = ended;
      this.#enqueue(p, op, tag, flags);
    });
  }

  /** @internal */
  async _closeDevice(dev: BlockDevice): Promise<void> {
    const t = this.#target(dev);
    await this.#until(() => t.inflight === 0 && t.resizing === 0);
    this.#h.closeDevice(dev.handle);
    this.#devices.delete(dev);
  }

  /** @internal The one home of a raw device's resize (BlockDevice.resize only checks arguments). */
  _resizeDevice(dev: BlockDevice, size: number): Promise<void> {
    // Resizes run in order, each after the requests issued before it; a
    // close() issued after a resize waits for it. The ftruncate and the
    // engine's new size: RingHandle.resizeDevice (native/binding/device_files.cc).
    const t = this.#target(dev);
    const run = async (): Promise<void> => {
      this.#submitQueued();
      await this.#until(() => t.inflight === 0);
      if (!this.#devices.has(dev)) throw deviceClosed(dev.path);
      try {
        await this.#h.resizeDevice(dev.handle, size);
      } catch (e) {
        throw fromNative(e, dev.path);
      }
    };
    t.resizing++;
    const done = t.resizeChain.then(run, run).finally(() => {
      t.resizing--;
      if (this.#waiters.length) this.#runWaiters();
    });
    t.resizeChain = done.catch(() => undefined);
    return done;
  }

  /** @internal The engine owns the fd (native/binding/device_files.cc): JS asks for it, never keeps a copy. */
  _deviceFd(dev: BlockDevice): number {
    return this.#h.deviceFd(this.#target(dev).handle);
  }

  /** @internal */
  _deviceSize(dev: BlockDevice): number {
    return this.#h.deviceSize(dev.handle);
  }

  /** @internal */
  _deviceFileLength(dev: BlockDevice): number {
    return this.#h.deviceFileLength(this.#target(dev).handle);
  }

  // The target of a device this ring opened (close and resize reach here
  // only through the device, so it is always there until _closeDevice).
  #target(dev: BlockDevice): DeviceTarget {
    const t = this.#devices.get(dev);
    if (!t) throw deviceClosed(dev.path);
    return t;
  }

  #checkOpen(): void {
    if (this.#closing) throw new BlockringError('ERR_RING_CLOSED', 'ring is closed');
  }

  #normalizeBatch(requests: unknown): NormalizedRequest[] {
    if (!Array.isArray(requests)) throw typeError('ERR_INVALID_ARG_TYPE', 'requests must be an array');
    const out: NormalizedRequest[] = [];
    for (let i = 0; i < requests.length; i++) {
      const r = checkOptions(requests[i], `requests[${i}]`, REQUEST_KEYS);
      const op = r.op as RequestOp;
      if (typeof op !== 'string' || !Object.prototype.hasOwnProperty.call(OPS, op)) {
        throw typeError('ERR_INVALID_ARG_VALUE', `requests[${i}].op must be one of ${Object.keys(OPS).join(', ')}`);
      }
      const dev = r.dev;
      if (!(dev instanceof BlockDevice) || !this.#devices.has(dev)) {
        throw typeError('ERR_INVALID_ARG_VALUE', `requests[${i}].dev must be a device opened on this ring`);
      }
      let buffers: ArrayBufferView[] | null = null;
      if (op === 'read' || op === 'write') buffers = [checkIoView(r.buffer, `requests[${i}].buffer`)];
      else if (op === 'readv' || op === 'writev') buffers = checkViews(r.buffers, `requests[${i}].buffers`);
      out.push(dev._normalize(OPS[op], op, buffers, r, `requests[${i}]`));
    }
    return out;
  }

  #enqueue(p: Pending, op: number, tag: number, flags: number): void {
    if ((this.#queued + 1) * SQ_STRIDE > this.#sq.length) {
      const grown = new Float64Array(this.#sq.length * 2);
      grown.set(this.#sq);
      this.#sq = grown;
    }
    const id = this.#freeIds.length ? this.#freeIds.pop()! : this.#pending.length;
    this.#pending[id] = p;
    if (p.signal) {
      const signal = p.signal;
      const onAbort = (): void => this.#abort(id, p);
      signal.addEventListener('abort', onAbort, { once: true });
      p.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    const sq = this.#sq;
    const b = this.#queued * SQ_STRIDE;
    sq[b + SQ_ID] = id;
    sq[b + SQ_OPWORD] = opWord(op, tag, flags);
    sq[b + SQ_DEVICE] = p.dev.handle;
    sq[b + SQ_LENGTH] = p.length;
    sq[b + SQ_OFFSET] = p.offset;
    // One view (dev.read/write: no array made for it), several, or none.
    const buffers = p.buffers;
    if (buffers === null) {
      sq[b + SQ_BUFFER] = 0;
      sq[b + SQ_BUFCOUNT] = 0;
    } else if (Array.isArray(buffers)) {
      sq[b + SQ_BUFFER] = this.#queuedBuffers.length;
      sq[b + SQ_BUFCOUNT] = buffers.length;
      for (const buf of buffers) this.#queuedBuffers.push(buf);
    } else {
      sq[b + SQ_BUFFER] = this.#queuedBuffers.length;
      sq[b + SQ_BUFCOUNT] = 1;
      this.#queuedBuffers.push(buffers);
    }
    this.#queued++;
    p.dev.inflight++;
    if (!this.#submitScheduled) {
      // Requests made in the same tick share one submission syscall.
      this.#submitScheduled = true;
      queueMicrotask(this.#submitTask);
      queueSubmit(this.#submitNow);
    }
  }

  readonly #submitTask = (): void => {
    this.#submitScheduled = false;
    this.#submitQueued();
  };

  readonly #submitNow = (): void => {
    this.#submitQueued();
  };

  // Submits the queued records. Single requests are checked one by one: a
  // refused record rejects only its own promise. An atomic submission (a batch)
  // submits all or nothing and returns the first refusal instead.
  #submitQueued(atomic = false): Error | null {
    submitted(this.#submitNow);
    const count = this.#queued;
    if (count === 0) return null;
    const buffers = this.#queuedBuffers;
    this.#queued = 0;
    this.#queuedBuffers = [];
    const ids = (i: number): number => this.#sq[i * SQ_STRIDE + SQ_ID]!;
    let failures: RecordFailure[];
    try {
      failures = this.#h.submit(this.#sq, count, buffers, atomic);
    } catch (e) {
      // Nothing was submitted: fail each request with the cause.
      const err = e as Error;
      if (atomic) {
        for (let i = 0; i < count; i++) this.#forget(ids(i));
      } else {
        for (let i = 0; i < count; i++) this.#settle(ids(i), 0, 0, 0, err);
      }
      if (this.#waiters.length) this.#runWaiters();
      return atomic ? err : null;
    }
    if (failures.length === 0) return null;
    let first: Error | null = null;
    if (atomic) {
      for (let i = 0; i < count; i++) this.#forget(ids(i));
      // The message names requests[index] (native: a batch's record index
      // is the request's index, as submit() submitted the single requests before it).
      first = failures[0]!.error;
    } else {
      for (const f of failures) this.#settle(ids(f.index), 0, 0, 0, f.error);
    }
    // Refused requests left their devices' counts: let close() waiters see it.
    if (this.#waiters.length) this.#runWaiters();
    return first;
  }

  // Drops a request that was never submitted.
  #forget(id: number): void {
    const p = this.#pending[id]!;
    this.#pending[id] = undefined;
    this.#freeIds.push(id);
    p.unlisten?.();
    p.ended?.();
    p.dev.inflight--;
  }

  // A request's signal fired. Still queued here (not yet handed to the
  // engine): drop its record. Otherwise the engine has it: fail it now, ask
  // the engine to cancel it (dropped if not yet issued; IORING_OP_ASYNC_CANCEL
  // on io_uring; the other engines let it run out), and let its completion,
  // when the kernel is done with the buffer, only free the slot.
  #abort(id: number, p: Pending): void {
    if (this.#pending[id] !== p || p.aborted) return;
    const err = abortError(p.signal!);
    const sq = this.#sq;
    for (let i = 0; i < this.#queued; i++) {
      if (sq[i * SQ_STRIDE + SQ_ID] !== id) continue;
      // Its buffers stay in #queuedBuffers (indices of later records hold).
      sq.copyWithin(i * SQ_STRIDE, (i + 1) * SQ_STRIDE, this.#queued * SQ_STRIDE);
      this.#queued--;
      this.#forget(id);
      this.#deliver(p, 0, 0, 0, err);
      if (this.#waiters.length) this.#runWaiters();
      return;
    }
    p.aborted = true;
    this.#deliver(p, 0, 0, 0, err);
    this.#h.cancel(id);
  }

  #onComplete(count: number, rawCount: number): void {
    const cq = this.#cq;
    try {
      for (let i = 0; i < count; i++) {
        const b = i * CQ_STRIDE;
        if (cq[b]! < 0) {
          this.#parked(-cq[b]!, cq[b + CQ_RESULT]!, cq[b + CQ_ISSUED]!, cq[b + CQ_COMPLETED]!);
          continue;
        }
        this.#settle(cq[b]!, cq[b + CQ_RESULT]!, cq[b + CQ_ISSUED]!, cq[b + CQ_COMPLETED]!, null, cq[b + CQ_SYSCALL]!);
      }
      if (rawCount) this.#raw._deliver(rawCount);
    } finally {
      // Even when a raw handler throws, close() waiters must see this batch.
      if (this.#waiters.length) this.#runWaiters();
    }
  }

  // Gives a qcow2 image (and each image of its chain) a native image
  // device: the engine splits its reads and writes by a cluster map the
  // format layer fills (native/format/cluster_map.h). Not above a backing
  // image that has none, nor over a file a WriteLog's wrap() wraps.
  readonly #attachImage = (dev: Qcow2Device, file: HostFile, backing: BackingDevice | null): void => {
    if (!(file instanceof BlockDevice) || !this.#devices.has(file)) return;
    let backingHandle = -1;
    if (backing instanceof BlockDevice) backingHandle = backing.handle;
    else if (backing instanceof Qcow2Device) backingHandle = backing._nativeHandle;
    if (backing && backingHandle < 0) return;
    const g = dev._geometry();
    const h = this.#h;
    const handle = h.attachImage(file.handle, backingHandle, g.clusterBits, g.l2Bits, g.size, g.readOnly,
      dev.offsetAlignment, dev.memoryAlignment, g.maxTables);
    // The image device has no BlockDevice: the ring's target is all #enqueue and #settle need.
    const target = new DeviceTarget(handle, dev.path);
    this.#imageHandles.set(handle, dev);
    dev._attach({
      handle,
      install: (table, entries) => h.imageInstall(handle, table, entries),
      set: (cluster, entry) => h.imageSet(handle, cluster, entry),
      has: (table) => h.imageHas(handle, table),
      reset: (size) => h.imageReset(handle, size),
      retryAll: (tokens, count) => h.retryParkedMany(tokens, count),
      submit: (op, buffers, offset, length, tag, flags, signal, ended) =>
        this._request(target, OP[op], op, tag, flags, buffers, offset, length, signal, ended),
      exportImage: () => h.exportImage(handle),
      close: async () => {
        this.#submitQueued();
        await this.#until(() => target.inflight === 0 && h.deviceInflight(handle) === 0);
        // A vhost-user-blk server may share the map: from now on it finds nothing there.
        h.imageReset(handle, dev.size);
        h.closeDevice(handle);
        this.#imageHandles.delete(handle);
      },
    });
  };

  // The engine parked a request on an image device: its format layer resolves it.
  #parked(token: number, handle: number, offset: number, word: number): void {
    const h = this.#h;
    const op = word % 8;
    const flags = Math.floor(word / 8) % 8;
    const p = {
      token, op, offset, length: Math.floor(word / 64), fua: (flags & FLAG.fua) !== 0,
      retry: () => void h.resumeParked(token, true, 0),
      finish: (result: number) => void h.resumeParked(token, false, result),
      copy: (b: Buffer, toRequest: boolean) => h.parkedCopy(token, b, toRequest),
    };
    const dev = this.#imageHandles.get(handle);
    if (dev) dev._resolve(p);
    else p.finish(-os.constants.errno.ENODEV);
  }

  #settle(id: number, res: number, issued: number, completed: number, failure: Error | null, syscall = 0): void {
    const p = this.#pending[id]!;
    this.#pending[id] = undefined;
    this.#freeIds.push(id);
    p.dev.inflight--;
    p.unlisten?.();
    p.ended?.();
    if (!p.aborted) this.#deliver(p, res, issued, completed, failure, syscall);
  }

  #deliver(p: Pending, res: number, issued: number, completed: number, failure: Error | null, syscall = 0): void {
    const error = failure ?? (res < 0 ? this.#ioError(p, -res, syscall) : null);
    if (p.resolve) {
      if (error) rejectWithCallerStack(p.resolve, error);
      else p.resolve(res);
    } else {
      const batch = p.batch!;
      const r: RequestResult = { bytes: error ? 0 : res };
      if (error) r.error = error as BlockIoError | AbortError;
      if (this.#trace) {
        r.issued = issued;
        r.completed = completed;
      }
      batch.results[p.index] = r;
      if (--batch.remaining === 0) batch.resolve(batch.results);
    }
  }

  // syscall: what the engine issued (CQ_SYSCALL), named by the addon.
  #ioError(p: Pending, errno: number, syscall: number): BlockIoError {
    return new BlockIoError({ errno, syscall: native.syscallNames[syscall] ?? 'none', op: p.opName, offset: p.offset, length: p.length, path: p.dev.path });
  }

  // Resolves when cond() holds; checked now and after each completion batch.
  #until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#waiters.push(() => {
        if (!cond()) return false;
        resolve();
        return true;
      });
    });
  }

  #runWaiters(): void {
    this.#waiters = this.#waiters.filter((w) => !w());
  }
}
