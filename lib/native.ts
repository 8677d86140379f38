// The native binding's shape, declared once. Everything in lib/ talks to
// the addon through these types.
import path from 'node:path';

import { BlockIoError, BlockringError } from './errors';

export interface DeviceInfo {
  handle: number;
  size: number;
  isBlockDevice: boolean;
  readOnly: boolean;
  growable: boolean;
  logicalBlockSize: number;
  physicalBlockSize: number;
  /** O_DIRECT granularity of offsets and lengths (1 when not direct). */
  offsetAlignment: number;
  /** O_DIRECT alignment of buffer addresses (1 when not direct). */
  memoryAlignment: number;
}

export interface OpenDeviceOptions {
  readOnly: boolean;
  create: boolean;
  direct: boolean;
  growable: boolean;
  exclusive: boolean;
  /** Grow a smaller regular file to this size (not with readOnly). */
  size: number | undefined;
  /** Ignore statx/ioctl alignment and probe with reads (BLOCKRING_PROBE_ALIGNMENT=1; for tests). */
  probeAlignment: boolean;
}

/** A record the native side refused, with the error it built (TypeError, RangeError or BlockringError, coded). */
export interface RecordFailure {
  index: number;
  error: Error;
}

/** Null-engine options after lib/null-engine.ts checked them (op -1 = any; Infinity = unbounded). */
export interface NativeNullOptions {
  latencyMinUs: number;
  latencyMaxUs: number;
  seed: number;
  faults: { op: number; offsetStart: number; offsetEnd: number; count: number; errno: number }[];
}

export interface RingHandleOptions {
  engine: string;
  depth: number;
  threads: number;
  directSubmitBatch: number;
  trace: boolean;
  nullEngine?: NativeNullOptions;
  completions: 'uv-poll' | 'thread';
  /** Microseconds to spin for the next completion after a batch (0: off). */
  pollMicros: number;
  /** $BLOCKRING_IO_URING: io_uring features to try ("none" or a comma list); undefined: all. */
  uringFeatures: string | undefined;
  cq: Float64Array;
  rawSq: Float64Array;
  rawCq: Float64Array;
  onComplete: (count: number, rawCount: number) => void;
}

export interface RingHandle {
  readonly engine: string;
  readonly engineInfo: { name: string; requested: string; fallbackReason: string | null; features: string[] };
  readonly depth: number;
  readonly completions: 'uv-poll' | 'thread';
  /** Opens (on the threadpool) and adds a device; rejects with an errno error. */
  openDevice(path: string, options: OpenDeviceOptions): Promise<DeviceInfo>;
  /** ftruncate (on the threadpool), then the engine's size. */
  resizeDevice(handle: number, size: number): Promise<void>;
  /** The device's size as the engine tracks it. */
  deviceSize(handle: number): number;
  /** fstat st_size of the device's file (-1 if fstat fails). */
  deviceFileLength(handle: number): number;
  /** The fd the engine opened and owns (mmap, lseek, servers' dups); ERR_DEVICE_CLOSED once closing. */
  deviceFd(handle: number): number;
  /** The engine records what this device sends to the kernel into log (native/engine/write_log.h). */
  attachLog(handle: number, log: WriteLogHandle): void;
  /** True when the fd was closed now; false when raw requests keep it open. */
  closeDevice(handle: number): boolean;
  /** Submits records 0..count-1 of sq; atomic: one bad record submits none. */
  submit(sq: Float64Array, count: number, buffers: ArrayBufferView[], atomic: boolean): RecordFailure[];
  submitRaw(count: number): number;
  /** Delivers completions already posted (onComplete, inside this call); 0 inside a completion callback. */
  reap(): number;
  registerBuffers(buffers: ArrayBufferView[], fixed: boolean): boolean;
  inflight(): number;
  /** An issued request (submit() record id) was aborted: drop or cancel it; it still completes. */
  cancel(id: number): void;
  close(): void;
  /** An image device over fileHandle (and backingHandle, -1: none); see native/format/cluster_map.h. */
  attachImage(fileHandle: number, backingHandle: number, clusterBits: number, l2Bits: number, size: number,
    readOnly: boolean, offsetAlignment: number, memoryAlignment: number, maxTables: number): number;
  imageInstall(handle: number, table: number, entries: Float64Array): void;
  imageSet(handle: number, cluster: number, entry: number): void;
  imageHas(handle: number, table: number): boolean;
  imageReset(handle: number, size: number): void;
  /** Retries a parked request, or finishes it with result; false when it is no longer parked. */
  resumeParked(token: number, retry: boolean, result: number): boolean;
  /** Retries tokens[0..count) (parked requests), then submits and wakes once. */
  retryParkedMany(tokens: Uint32Array, count: number): void;
  /** Copies between a parked transfer's buffers and buffer; returns the bytes copied. */
  parkedCopy(token: number, buffer: ArrayBufferView, toRequest: boolean): number;
  deviceInflight(handle: number): number;
  /** For a vhost-user-blk server: an id its handle takes (options.image), 0 when the chain cannot be served in place. */
  exportImage(handle: number): number;
}

export type AlignedAllocation = { buffer: Buffer } | { arrayBuffer: ArrayBuffer; offset: number };

export interface MappedRegionHandle {
  readonly unmapped: boolean;
  arrayBuffer(): ArrayBuffer;
  read(target: ArrayBufferView, offset: number): number;
  write(source: ArrayBufferView, offset: number): number;
  sync(async: boolean): Promise<void>;
  advise(advice: string): void;
  lock(): void;
  unlock(): void;
  /** One byte per page of the enclosing pages: 1 = resident. */
  residency(): Uint8Array;
  unmap(): void;
}

/** A copy-on-write mapping of a qcow2 overlay (lib/format/qcow2-map.ts). */
/** A write log entry as native/binding/write_log.cc returns it: [kind (0 write, 1 flush, 2 zeroes), offset, length, data, issued]. */
export type NativeLogEntry = [number, number, number, Buffer | null, number];
export interface WriteLogHandle {
  now(): number;
  /** An entry issued now (for devices outside the engine): returns its index. */
  record(kind: number, offset: number, dataOrLength: Uint8Array | number): number;
  complete(index: number): void;
  /** Entries from index known on, and every entry's completed stamp. */
  sync(known: number): [NativeLogEntry[], Float64Array];
}

export interface CowRegionHandle {
  mapOverlay(offset: number, length: number, host: number, writable: boolean): void;
  /** fd -1: read-only zero pages. */
  mapShared(offset: number, length: number, fd: number): void;
  arm(armed: boolean): void;
  supply(hosts: Float64Array): number;
  available(): number;
  /** [guestCluster, host, -errno] triples. */
  drain(): Float64Array;
  reclaim(): Float64Array;
  /** 0 or -errno. */
  copyUp(cluster: number): number;
  takeError(): number;
  /** Opaque: for new MappedRegion(mapping, externalBuffers). */
  newMapping(writable: boolean): unknown;
}

export interface VhostUserBlkHandleOptions {
  socket: string;
  engine: string;
  depth: number;
  numQueues: number;
  readOnly: boolean;
  size: number;
  direct: boolean;
  blockSize: number;
  offsetAlign: number;
  memAlign: number;
  isBlockDevice: boolean;
  serial: string;
  /** Set for devices the engine cannot run (qcow2): requests come here instead (fd -1). */
  onRequest?: (id: number, op: number, offset: number, length: number, flags: number, parked: boolean) => void;
  /** With onRequest: a ring's exportImage id. Reads and writes then run in place; only parked requests come to onRequest. */
  image?: number;
}

export interface VhostUserBlkHandle {
  readonly engine: string;
  stats(): { connected: boolean; connections: number; served: number; copied: number };
  /** Delegated requests: guest data of write id into buffer / buffer into read id's guest buffers. */
  copyOut(id: number, buffer: Buffer): boolean;
  copyIn(id: number, buffer: Buffer): boolean;
  complete(id: number, result: number, retry?: boolean): void;
  close(): void;
}

export interface NativeBinding {
  RingHandle: new (options: RingHandleOptions) => RingHandle;
  /** The deepest ring (options.depth), native/engine/factory.h kMaxDepth. */
  readonly maxDepth: number;
  /** options.threads' bound, kMaxThreads there. */
  readonly maxThreads: number;
  /** options.directSubmitBatch's bound, kMaxDirectSubmitBatch there. */
  readonly maxDirectSubmitBatch: number;
  allocAligned(size: number, alignment: number, v8Only: boolean): AlignedAllocation;
  addressAlignment(view: ArrayBufferView): number;
  MappedRegion: {
    new (fd: number, offset: number, length: number, privateCow: boolean, readOnly: boolean,
      externalBuffers: boolean): MappedRegionHandle;
    new (mapping: unknown, externalBuffers: boolean): MappedRegionHandle;
  };
  CowRegion: new (overlayFd: number, size: number, clusterSize: number, capacity: number) => CowRegionHandle;
  WriteLog: new () => WriteLogHandle;
  VhostUserBlkHandle: new (fd: number, options: VhostUserBlkHandleOptions) => VhostUserBlkHandle;
  /** BlockIoError.syscall names, by a completion record's CQ_SYSCALL (native/engine/syscall.h). */
  readonly syscallNames: readonly string[];
  /** The classes native errors are built as; called once, at load. */
  setErrorClasses(blockIo: typeof BlockIoError, blockring: typeof BlockringError): void;
  /** lseek(fd, offset, data ? SEEK_DATA : SEEK_HOLE): the offset found, or -errno. */
  seekDataOrHole(fd: number, offset: number, data: boolean): number;
}

function load(): NativeBinding {
  // BLOCKRING_ADDON points at a specific build (the sanitizer build, say).
  const override = process.env.BLOCKRING_ADDON;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const build = require('node-gyp-build') as (dir: string) => unknown;
  const b = (override ? require(path.resolve(override)) : build(path.join(__dirname, '..', '..'))) as NativeBinding;
  b.setErrorClasses(BlockIoError, BlockringError);
  return b;
}

export const native: NativeBinding = load();
