// qcow2 images as block devices (QEMU docs/interop/qcow2.rst). Guest
// requests are translated per cluster into reads and writes of the image
// file (a raw BlockDevice on the same ring, so every engine works) and of
// the backing device.
//
// Crash consistency (leaks tolerable, corruption never):
// - a new data cluster gets its refcount (in cache) first, then its data is
//   written, and only after that write completed does its L2 entry change;
// - metadata goes to disk only in writeback(), in dependency order with an
//   fdatasync between classes: refcount blocks, refcount table (+ header),
//   L2 tables, L1 table; then freed clusters get their refcounts dropped.
//   Snapshots of the tables are taken in the reverse order (pointers first),
//   so every pointer written was preceded by what it points to;
// - freed clusters are never reused within a session, so a stale pointer
//   left by a crash points at old data, never at someone else's.
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import type { BlockDevice, Extent, TagOption, WriteOptions, WriteZeroesOptions, FlushOptions } from '../block-device';
import { addressAlignment } from '../aligned';
import { abortError, BlockringError, checkSignal, deviceClosed, rejectOnAbort } from '../errors';
import { checkBool, checkOptions, checkTag, checkUint, checkView, checkViews, rangeError, typeError } from '../validate';
import {
  INCOMPAT_COMPRESSION, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, INCOMPAT_EXTL2,
  invalid, parseHeader, putU64, type Qcow2Header,
} from './qcow2-header';
import { ioBuffer, MetadataCache, type Table } from './metadata-cache';
import { TaskGate } from './task-gate';
import { FLAG, OP, TAG } from '../records';
import type { MappedRegion } from '../mapped-region';
import { CowMap, type CowHost, type Qcow2MapOptions } from './qcow2-map';
import type { LoggableDevice } from '../write-log';

/** What a qcow2 device needs from a backing device (raw or qcow2). */
export interface BackingDevice {
  readonly path: string;
  readonly size: number;
  readonly format: string;
  read(buffer: ArrayBufferView, offset: number): Promise<number>;
  close(): Promise<void>;
  allocation?(offset: number, length: number): Promise<Extent[]>;
}

/** The image file as the qcow2 layer uses it: a raw BlockDevice, or a WriteLog's wrapper of one. */
export type HostFile = LoggableDevice;

export interface Qcow2Opener {
  /** Opens the image file itself (raw). */
  openFile(path: string, readOnly: boolean, direct: boolean): Promise<HostFile>;
  /** Opens a backing image read-only. */
  openBacking(path: string, format: string, chain: string[]): Promise<BackingDevice>;
}

/**
 * What the ring gives an image whose requests its engine splits by a native
 * cluster map (native/format/cluster_map.h): this layer decodes L2 entries
 * and pushes them down; the engine parks what the map does not know.
 */
export interface NativeImage {
  readonly handle: number;
  install(table: number, entries: Float64Array): void;
  set(cluster: number, entry: number): void;
  /** Whether the map holds the table (then it is current: every change was pushed). */
  has(table: number): boolean;
  reset(size: number): void;
  /** Retries the parked requests tokens[0..count) (ParkedRequest.token), submitting once. */
  retryAll(tokens: Uint32Array, count: number): void;
  /**
   * A request on the image handle, scheduled by the engine with its tag as a
   * raw record there is; reads and writes are split by the cluster map, the
   * rest (and what the map does not know) is parked for this layer.
   */
  submit(op: keyof typeof OP, buffers: ArrayBufferView[] | null, offset: number, length: number, tag: number, flags: number,
    signal: AbortSignal | null, ended: (() => void) | null): Promise<number>;
  /** Waits for the handle's requests (parked ones included), then closes it. */
  close(): Promise<void>;
  /** An id a vhost-user-blk server takes to serve this image in place (0: it cannot). */
  exportImage(): number;
}

/** A request the engine parked on this image (ring.ts decodes the record). */
export interface ParkedRequest {
  /** The ring engine's name for it (NativeImage.retryAll); none for a vhost-user-blk server's. */
  token?: number;
  op: number; // records.ts OP
  offset: number;
  length: number;
  fua: boolean;
  /** The map knows more now: split it again. */
  retry(): void;
  /** Bytes, or -errno. */
  finish(result: number): void;
  /** Copies between the request's buffers and b (toRequest: into them). */
  copy(b: Buffer, toRequest: boolean): number;
}

// Native map entries (native/format/cluster_map.h).
const MAP_DATA = 1;
const MAP_WRITABLE = 2;
const MAP_ZERO = 4;
const MAP_BACKING = 8;
const MAX_MAP_TABLES = 64;
const PROBE = new Error('probe');

export interface Qcow2Options {
  /** Called once the device is open: the ring gives it a native image handle. */
  attach?: (dev: Qcow2Device, file: HostFile, backing: BackingDevice | null) => void;
  readOnly: boolean;
  direct: boolean;
  /** Bytes of L2 tables and refcount blocks kept in memory. */
  cacheSize: number;
  /** Real paths of the images above this one (loop and depth checks). */
  chain: string[];
}

const READ_KEYS = ['tag', 'signal'] as const;
const WRITE_KEYS = ['tag', 'signal', 'fua'] as const;
const ALL_KEYS = ['tag', 'signal', 'fua', 'metadata', 'unmap'] as const;

export const MAX_BACKING_DEPTH = 16;
export const DEFAULT_CACHE_SIZE = 4 << 20;

const OFFSET_MASK_HI = 0x00ffffff; // L1/L2 offset bits 9..55
const FLAG_COPIED = 0x80000000; // bit 63 (in the high word)
const FLAG_COMPRESSED = 0x40000000; // bit 62
const ZERO_FLAG = 1; // bit 0 of a standard L2 entry (v3)

type Kind = 'data' | 'zero' | 'unallocated' | 'compressed';
interface Mapping {
  kind: Kind;
  host: number; // data: host offset of the cluster (or subcluster run)
  copied: boolean; // refcount is exactly one: may be written in place
  csize: number; // compressed: bytes of compressed data
  raw: number; // compressed: host byte offset of the compressed data
}

export class Qcow2Device {
  readonly format = 'qcow2';
  readonly path: string;
  readonly readOnly: boolean;
  readonly direct: boolean;
  readonly growable = false;
  readonly isBlockDevice = false;
  readonly logicalBlockSize = 512;
  readonly physicalBlockSize: number;
  readonly offsetAlignment: number;
  readonly memoryAlignment: number;
  readonly clusterSize: number;
  readonly version: 2 | 3;
  readonly backing: BackingDevice | null;
  /** Set when corruption was found: the image is then read-only. */
  corrupt = false;

  readonly #file: HostFile;
  readonly #h: Qcow2Header;
  readonly #bits: number;
  readonly #cs: number;
  readonly #l2Entries: number;
  readonly #entryBytes: number; // 8, or 16 with extended L2
  readonly #extL2: boolean;
  readonly #refBits: number;
  readonly #refPerBlock: number;
  #size: number;
  #l1: Buffer; // l1Size entries: a view of #l1Full
  #l1Full: Buffer; // whole clusters, as on disk
  readonly #head: Buffer; // the header cluster, rewritten whole
  #l1Dirty = 0; // generation; 0 = clean
  #reftable: Buffer;
  #reftableDirty = false;
  #headerDirty = false;
  readonly #cache: MetadataCache;
  readonly #gate = new TaskGate();
  #nextFree: number; // next host cluster index to allocate (append only)
  #hostEnd: number; // bytes of the image file we trust (allocation end)
  #pendingFrees: number[] = []; // host cluster offsets whose refcount drops after the next writeback
  #unsynced = false; // writes issued since the last fdatasync
  #metaClusters = new Set<number>(); // host cluster indices holding metadata
  readonly #clusterLocks = new Map<number, Promise<void>>();
  readonly #slotLocks = new Map<string, Promise<void>>();
  #writeback: Promise<void> | null = null;
  #writebackAgain = false;
  #closing: Promise<void> | null = null;
  #lastCompressed: { raw: number; data: Buffer } | null = null;
  #cow: CowMap | null = null; // the live mapping (qcow2-map.ts)
  #native: NativeImage | null = null; // the engine's cluster map of this image
  readonly #resolveErrors = new Map<string, Error>(); // a parked request's coded error, for its Promise
  #parkedWrites: ParkedRequest[] = []; // parked in this wakeup, allocated together (#allocateParked)
  // resize() against parked requests, which the gate does not see (raw
  // records, a vhost-user-blk server's): while it swaps L1, new ones wait in
  // #held and it waits for the reads and writes already being resolved.
  #resizing = false;
  #held: ParkedRequest[] = [];
  #resolving = 0;
  #resolvedIdle: (() => void) | null = null;
  #retryTokens = new Uint32Array(64);

  private constructor(file: HostFile, h: Qcow2Header, backing: BackingDevice | null, o: Qcow2Options,
    head: Buffer, l1: Buffer, reftable: Buffer, fileSize: number) {
    this.#file = file;
    this.direct = o.direct;
    this.offsetAlignment = o.direct ? Math.max(512, file.offsetAlignment ?? 512) : 1;
    this.memoryAlignment = o.direct ? Math.max(512, file.memoryAlignment ?? 512) : 1;
    this.#head = ioBuffer(2 ** h.clusterBits);
    head.copy(this.#head);
    this.path = file.path;
    this.#h = h;
    this.#bits = h.clusterBits;
    this.#cs = 2 ** h.clusterBits;
    this.clusterSize = this.#cs;
    this.physicalBlockSize = this.#cs;
    this.version = h.version;
    this.#extL2 = (h.incompatible & INCOMPAT_EXTL2) !== 0;
    this.#entryBytes = this.#extL2 ? 16 : 8;
    this.#l2Entries = this.#cs / this.#entryBytes;
    this.#refBits = 2 ** h.refcountOrder;
    this.#refPerBlock = (this.#cs * 8) / this.#refBits;
    this.#size = h.size;
    this.#l1Full = l1;
    this.#l1 = l1.subarray(0, h.l1Size * 8);
    this.#reftable = reftable;
    this.backing = backing;
    this.#nextFree = Math.ceil(fileSize / this.#cs);
    this.#hostEnd = this.#nextFree * this.#cs;
    // Writing needs: no snapshots (shared clusters), plain refcounts we can
    // update, no subclusters; anything else opens read-only.
    this.readOnly = o.readOnly || h.nbSnapshots > 0 || this.#extL2 || this.#refBits > 32 ||
      (h.incompatible & INCOMPAT_CORRUPT) !== 0;
    this.#cache = new MetadataCache(Math.max(o.cacheSize, 4 * this.#cs), this.#cs, (off, buf) => this.#readMeta(off, buf));
    this.#metaClusters.add(0);
    this.#markMeta(h.l1TableOffset, h.l1Size * 8);
    this.#markMeta(h.refcountTableOffset, h.refcountTableClusters * this.#cs);
    for (let i = 0; i < h.l1Size; i++) {
      const off = this.#l1Offset(i);
      if (off) this.#metaClusters.add(off / this.#cs);
    }
    for (let i = 0; i < reftable.length / 8; i++) {
      const off = this.#reftableEntry(i);
      if (off) this.#metaClusters.add(off / this.#cs);
    }
  }

  /** @internal Opens an image file already identified as qcow2 by the caller's `format`. */
  static async open(imagePath: string, opener: Qcow2Opener, o: Qcow2Options): Promise<Qcow2Device> {
    const file = await opener.openFile(imagePath, o.readOnly, o.direct);
    let backing: BackingDevice | null = null;
    try {
      const fileSize = file.size;
      const head = ioBuffer(Math.min(fileSize, 2 << 20));
      await readFull(file, head, 0);
      const h = parseHeader(imagePath, head, fileSize);
      const cs = 2 ** h.clusterBits;
      // L1 is kept as whole clusters so it can be written with O_DIRECT.
      const l1 = ioBuffer(Math.ceil((h.l1Size * 8) / cs) * cs || cs);
      await readFull(file, l1, h.l1TableOffset);
      const reftable = ioBuffer(h.refcountTableClusters * cs);
      await readFull(file, reftable, h.refcountTableOffset);
      checkPointers(imagePath, l1.subarray(0, h.l1Size * 8), cs, fileSize, 'L1');
      checkPointers(imagePath, reftable, cs, fileSize, 'refcount table');
      if (h.backingFile !== null) {
        if (o.chain.length + 1 >= MAX_BACKING_DEPTH) {
          throw new BlockringError('ERR_QCOW2_BACKING_TOO_DEEP',
            `'${imagePath}': backing chain deeper than ${MAX_BACKING_DEPTH}`);
        }
        const bpath = path.resolve(path.dirname(imagePath), h.backingFile);
        const bformat = h.backingFormat ?? 'raw'; // never probed (a raw guest could forge a header)
        if (bformat !== 'raw' && bformat !== 'qcow2') {
          throw new BlockringError('ERR_QCOW2_UNSUPPORTED', `'${imagePath}': backing format '${bformat}' is not supported`);
        }
        backing = await opener.openBacking(bpath, bformat, o.chain);
      }
      const dev = new Qcow2Device(file, h, backing, o, head.subarray(0, cs), l1, reftable, fileSize);
      if (!dev.readOnly && (h.incompatible & INCOMPAT_DIRTY)) await dev.#repair();
      o.attach?.(dev, file, backing);
      // With lazy_refcounts (COMPAT_LAZY_REFCOUNTS) QEMU may leave the image
      // dirty; this writer keeps refcounts exact anyway and never sets it.
      return dev;
    } catch (e) {
      await backing?.close().catch(() => undefined);
      await file.close().catch(() => undefined);
      throw e;
    }
  }

  get size(): number {
    return this.#size;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  /** Bytes of metadata the cache may hold (see README "qcow2"). */
  get cacheLimit(): number {
    return this.#cache.limit;
  }

  // ---- public API (validated like BlockDevice) ----

  read(buffer: ArrayBufferView, offset: number | bigint, options?: TagOption): Promise<number> {
    return this.#call(() => {
      const b = toBuffer(checkView(buffer, 'buffer'));
      const off = checkUint(offset, 'offset');
      this.#checkDirect(off, [b]);
      const tag = this.#transferTag(options, READ_KEYS);
      if (tag >= 0) return this.#submitNative('read', [b], off, b.length, tag, 0, true, options);
      if (options === undefined && !this.#closing && !this.#cow && this.#gate.tryEnterSimple()) {
        // Hot path (SIMPLE, nothing ordered pending): no per-request closure through the gate.
        return this.#read(b, off).then((n) => {
          this.#gate.leaveSimple();
          return n;
        }, (e: unknown) => {
          this.#gate.leaveSimple();
          throw e;
        });
      }
      return this.#op(checkOptions(options, 'options', READ_KEYS), false, () => this.#read(b, off));
    });
  }

  readv(buffers: ArrayBufferView[], offset: number | bigint, options?: TagOption): Promise<number> {
    return this.#call(() => {
      const bs = checkViews(buffers, 'buffers').map(toBuffer);
      const off = checkUint(offset, 'offset');
      this.#checkDirect(off, bs);
      const tag = this.#transferTag(options, READ_KEYS);
      if (tag >= 0) return this.#submitNative('read', bs, off, bs.reduce((n, b) => n + b.length, 0), tag, 0, true, options);
      return this.#op(checkOptions(options, 'options', READ_KEYS), false, async () => {
        const all = ioBuffer(bs.reduce((n, b) => n + b.length, 0));
        const n = await this.#read(all, off);
        let at = 0;
        for (const b of bs) at += all.copy(b, 0, at, Math.min(n, at + b.length));
        return n;
      });
    });
  }

  write(buffer: ArrayBufferView, offset: number | bigint, options?: WriteOptions): Promise<number> {
    return this.#call(() => {
      const b = toBuffer(checkView(buffer, 'buffer'));
      return this.#writeOp(b, offset, options);
    });
  }

  writev(buffers: ArrayBufferView[], offset: number | bigint, options?: WriteOptions): Promise<number> {
    return this.#call(() => {
      const bs = checkViews(buffers, 'buffers').map(toBuffer);
      return this.#writeOp(bs.length === 1 ? bs[0]! : Buffer.concat(bs), offset, options, bs);
    });
  }

  /** Writes back dirty metadata in dependency order, then fdatasync. */
  flush(options?: FlushOptions): Promise<void> {
    return this.#call(() => {
      const o = checkOptions(options, 'options', ['tag', 'signal', 'metadata']);
      const metadata = checkBool(o.metadata, 'options.metadata');
      const tag = this.#engineTag(o);
      if (tag >= 0) {
        this.#checkOpen();
        return this.#submitNative('flush', null, 0, 0, tag, metadata ? FLAG.metadata : 0, false, o).then(() => undefined);
      }
      return this.#op(o, false, () => this.#flush()).then(() => undefined);
    });
  }

  /** Deallocates whole clusters (they read back as zeros); partial clusters are zeroed. */
  discard(offset: number | bigint, length: number | bigint, options?: TagOption): Promise<number> {
    return this.#call(() => {
      const off = checkUint(offset, 'offset');
      const len = checkUint(length, 'length');
      this.#checkRange(off, len, 'discard');
      const o = checkOptions(options, 'options', READ_KEYS);
      const tag = this.#engineTag(o);
      if (tag >= 0) {
        this.#checkWritable();
        return this.#submitNative('discard', null, off, len, tag, 0, false, o);
      }
      return this.#op(o, true, () => this.#zero(off, len));
    });
  }

  writeZeroes(offset: number | bigint, length: number | bigint, options?: WriteZeroesOptions): Promise<number> {
    return this.#call(() => {
      const o = checkOptions(options, 'options', ['tag', 'signal', 'unmap']);
      const unmap = checkBool(o.unmap, 'options.unmap');
      const off = checkUint(offset, 'offset');
      const len = checkUint(length, 'length');
      this.#checkRange(off, len, 'writeZeroes');
      const tag = this.#engineTag(o);
      if (tag >= 0) {
        this.#checkWritable();
        return this.#submitNative('writeZeroes', null, off, len, tag, unmap ? FLAG.unmap : 0, false, o);
      }
      return this.#op(o, true, () => this.#zero(off, len));
    });
  }

  /** Extents covering [offset, min(offset + length, size)), in order. */
  allocation(offset: number | bigint, length: number | bigint): Promise<Extent[]> {
    return this.#call(() => {
      const off = checkUint(offset, 'offset');
      const len = checkUint(length, 'length');
      this.#checkOpen();
      return this.#allocation(off, Math.min(off + len, this.#size));
    });
  }

  /** Grows the virtual size (shrinking is refused); grows L1 when needed. */
  resize(size: number | bigint): Promise<void> {
    return this.#call(() => {
      const n = checkUint(size, 'size');
      this.#checkWritable();
      return this.#gate.run(TAG.ordered, () => this.#resize(n));
    });
  }

  /** @internal A ring.submit() entry: validated now, run by the returned function. */
  _prepare(r: Record<string, unknown>, name: string): () => Promise<number> {
    const op = r.op;
    const views = op === 'read' || op === 'write' ? [checkView(r.buffer, `${name}.buffer`)]
      : op === 'readv' || op === 'writev' ? checkViews(r.buffers, `${name}.buffers`) : null;
    checkTag(r.tag);
    if (op !== 'read' && op !== 'readv') {
      if (op !== 'flush') this.#checkWritable();
      for (const k of ['fua', 'metadata', 'unmap']) checkBool(r[k], `${name}.${k}`);
    }
    const offset = op === 'flush' ? 0 : checkUint(r.offset, `${name}.offset`);
    const signal = checkSignal(r.signal, `${name}.signal`) ?? undefined;
    const o = { tag: r.tag as TagOption['tag'], signal };
    const w = r.fua === undefined ? o : { ...o, fua: r.fua as boolean };
    switch (op) {
      case 'read':
        return () => this.read(views![0]!, offset, o);
      case 'readv':
        return () => this.readv(views!, offset, o);
      case 'write':
      case 'writev': {
        this.#checkRange(offset, views!.reduce((n, v) => n + v.byteLength, 0), 'write');
        return () => (op === 'write' ? this.write(views![0]!, offset, w) : this.writev(views!, offset, w));
      }
      case 'flush':
        return () => this.flush(o).then(() => 0);
      case 'discard':
      case 'writeZeroes': {
        const len = checkUint(r.length, `${name}.length`);
        this.#checkRange(offset, len, op);
        return () => (op === 'discard' ? this.discard(offset, len, o) : this.writeZeroes(offset, len, o));
      }
      default:
        throw typeError('ERR_INVALID_ARG_VALUE', `${name}.op must be one of read, write, readv, writev, flush, discard, writeZeroes`);
    }
  }

  /**
   * Maps the whole image (README "Mapped copy-on-write"): needs a raw
   * backing file (or none), no compressed clusters, clusters >= a page.
   */
  async map(options?: Qcow2MapOptions): Promise<MappedRegion> {
    this.#checkOpen();
    if (this.backing && (this.backing.format !== 'raw' || !('_fd' in this.backing))) {
      throw new BlockringError('ERR_NOT_SUPPORTED', `'${this.path}': only a raw backing file can be mapped`);
    }
    if (this.#extL2) throw new BlockringError('ERR_NOT_SUPPORTED', `'${this.path}': subclusters cannot be mapped`);
    return this.#gate.run(TAG.ordered, async () => {
      if (this.#cow && !this.#cow.detached) throw new BlockringError('ERR_ALREADY_MAPPED', `'${this.path}' is already mapped`);
      const { map, region } = await CowMap.create(this.#cowHost(), options);
      this.#cow = map;
      this.#native?.reset(this.#size); // mapped: every request goes through this layer (qcow2-map.ts)
      return region;
    });
  }

  /** Waits for requests, writes back metadata, closes the chain. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        await this.#gate.idle();
        let err: unknown = null;
        await this.#native?.close().catch((e: unknown) => (err = e)); // parked requests are resolved meanwhile
        this.#native = null;
        await this.#cow?.detach().catch((e: unknown) => (err = e));
        if (!this.readOnly) await this.#flush().catch((e: unknown) => (err = e));
        await this.#file.close();
        await this.backing?.close();
        if (err) throw err;
      })();
    }
    return this.#closing;
  }

  // ---- request plumbing ----

  #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #checkOpen(): void {
    if (this.#closing) throw deviceClosed(this.path);
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.readOnly || this.corrupt) {
      throw new BlockringError('ERR_READ_ONLY', `device '${this.path}' is open read-only${this.corrupt ? ' (image is corrupt)' : ''}`);
    }
  }

  // With O_DIRECT the image file needs aligned I/O, so guest requests must be aligned as on a raw device.
  #checkDirect(off: number, bufs: Buffer[]): void {
    if (!this.direct) return;
    const len = bufs.reduce((n, b) => n + b.length, 0);
    if (off % this.offsetAlignment || len % this.offsetAlignment) {
      throw rangeError('ERR_MISALIGNED', `O_DIRECT: offset ${off} and length ${len} must be multiples of ${this.offsetAlignment} (dev.offsetAlignment)`);
    }
    for (const b of bufs) {
      if (addressAlignment(b) < this.memoryAlignment) {
        throw rangeError('ERR_MISALIGNED', `O_DIRECT: buffers must start at a multiple of ${this.memoryAlignment} bytes (dev.memoryAlignment); allocate them with allocAligned`);
      }
    }
  }

  #checkRange(off: number, len: number, what: string): void {
    if (off + len > this.#size) {
      throw rangeError('ERR_OUT_OF_RANGE', `${what} beyond the end of the device (${off} + ${len} > size ${this.#size})`);
    }
  }

  // A request's `signal` (README "Cancellation"): aborted before it starts
  // (already, or while it waits behind an ORDERED request), it is dropped;
  // once started, a qcow2 request is several I/Os and metadata updates that
  // run to their end (close() waits for them), and it rejects at once.
  #op<T>(options: unknown, write: boolean, fn: () => Promise<T>): Promise<T> {
    const o = checkOptions(options, 'options', ALL_KEYS);
    const tag = checkTag(o.tag);
    const signal = checkSignal(o.signal, 'options.signal');
    if (write) this.#checkWritable();
    else this.#checkOpen();
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const cow = this.#cow;
    const run = cow ? () => cow.drain().then(fn) : fn;
    if (!signal) return this.#gate.run(tag, run);
    return rejectOnAbort(this.#gate.run(tag, () => (signal.aborted ? Promise.reject(abortError(signal)) : run())), signal);
  }

  #writeOp(b: Buffer, offset: unknown, options: unknown, parts: Buffer[] = [b]): Promise<number> {
    const o = checkOptions(options, 'options', WRITE_KEYS);
    const fua = checkBool(o.fua, 'options.fua');
    const off = checkUint(offset, 'offset');
    this.#checkWritable();
    this.#checkRange(off, b.length, 'write');
    this.#checkDirect(off, parts);
    const tag = this.#transferTag(o, WRITE_KEYS);
    if (tag >= 0) return this.#submitNative('write', parts, off, b.length, tag, fua ? FLAG.fua : 0, true, o);
    return this.#op(o, true, async () => {
      await this.#write(b, off);
      if (fua) await this.#flush();
      return b.length;
    });
  }

  // ---- the engine's cluster map (native/format/cluster_map.h) ----

  /** The handle ring.raw records name (README "qcow2"). */
  get handle(): number {
    if (!this.#native) {
      throw new BlockringError('ERR_NOT_SUPPORTED', `'${this.path}' has no native handle (closed, or its file is a WriteLog's wrap())`);
    }
    return this.#native.handle;
  }

  /** @internal The native handle, or -1. */
  get _nativeHandle(): number {
    return this.#native?.handle ?? -1;
  }

  /** @internal For serveVhostUserBlk: an export id of the native image device, 0 without one. */
  _exportImage(): number {
    return this.#native && this.#mapOn() ? this.#native.exportImage() : 0;
  }

  /** @internal What the ring's attachImage needs. */
  _geometry(): { clusterBits: number; l2Bits: number; size: number; readOnly: boolean; maxTables: number } {
    return { clusterBits: this.#bits, l2Bits: Math.log2(this.#l2Entries), size: this.#size,
      readOnly: this.readOnly || this.corrupt, maxTables: Math.max(MAX_MAP_TABLES, Math.ceil(this.#cache.limit / this.#cs)) };
  }

  /** @internal */
  _attach(n: NativeImage): void {
    this.#native = n;
  }

  #mapOn(): boolean {
    return this.#native !== null && !this.#cow && !this.#extL2;
  }

  // One scheduler for tags: with the native map on, a request goes to the
  // engine on the image handle with its tag and flags,
  // exactly as a raw record on dev.handle does, so the two APIs order with
  // each other as on a raw device. The engine splits reads and writes by the
  // map and parks the rest (flush, discard, write-zeroes, FUA writes, what
  // the map does not know) for _resolve; a signal is the ring's, as for a
  // raw device. -1: this layer's gate runs it.
  #engineTag(o: { tag?: unknown }): number {
    if (!this.#mapOn() || this.#closing) return -1;
    return checkTag(o.tag);
  }

  // A read or write also counts in the gate until the engine is done with
  // it (after an abort too), so what the gate orders itself (resize, close)
  // waits for it.
  #transferTag(options: unknown, keys: readonly string[]): number {
    const tag = this.#engineTag(options === undefined ? {} : checkOptions(options, 'options', keys));
    return tag >= 0 && this.#gate.tryEnterSimple() ? tag : -1;
  }

  readonly #leaveGate = (): void => this.#gate.leaveSimple();

  #submitNative(op: keyof typeof OP, bufs: ArrayBufferView[] | null, off: number, len: number, tag: number, flags: number,
    counted: boolean, options: unknown): Promise<number> {
    let signal: AbortSignal | null;
    try {
      signal = options === undefined ? null : checkSignal((options as { signal?: unknown }).signal, 'options.signal');
    } catch (e) {
      if (counted) this.#gate.leaveSimple();
      throw e;
    }
    if (signal?.aborted) {
      if (counted) this.#gate.leaveSimple();
      return Promise.reject(abortError(signal));
    }
    return this.#native!.submit(op, bufs, off, len, tag, flags, signal, counted ? this.#leaveGate : null).then(undefined, (e: unknown) => {
      const key = `${OP[op]}:${off}:${len}`;
      const coded = this.#resolveErrors.get(key);
      this.#resolveErrors.delete(key);
      throw coded ?? e;
    });
  }

  /** The native map's entry for guest cluster vc (0: left to this layer). */
  #entryFor(vc: number, m: Mapping): number {
    if (m.kind === 'data') return m.host + MAP_DATA + (m.copied && !this.readOnly && !this.corrupt ? MAP_WRITABLE : 0);
    if (m.kind === 'zero') return MAP_ZERO;
    if (m.kind === 'unallocated') return this.#backingEmptyAt(vc) ? MAP_ZERO : MAP_BACKING;
    return 0; // compressed: decompressed here
  }

  #probe(t: Table | null, vc: number): number {
    try {
      return this.#entryFor(vc, this.#decode(t, vc, 0, true));
    } catch (e) {
      if (e === PROBE) return 0; // a bad entry: this layer reports it when it is used
      throw e;
    }
  }

  #pushEntry(t: Table, vc: number): void {
    if (this.#mapOn()) this.#native!.set(vc, this.#probe(t, vc));
  }

  /** Installs L1 slot i's table (null: L1 has none) as it is now. */
  #installTable(i: number, t: Table | null): void {
    const e = new Float64Array(this.#l2Entries);
    const base = i * this.#l2Entries;
    const n = Math.min(this.#l2Entries, Math.ceil(this.#size / this.#cs) - base);
    for (let k = 0; k < n; k++) e[k] = this.#probe(t, base + k);
    this.#native!.install(i, e);
  }

  /** @internal The engine parked a request on this image: resolve what it needs, then resume it. */
  _resolve(p: ParkedRequest): void {
    if (this.#resizing) {
      this.#held.push(p);
      return;
    }
    if (p.op === OP.write && !p.fua) {
      // Every write parked in one wakeup (the ring delivers them in one
      // pass) is allocated by one synchronous step once the pass is over.
      if (this.#parkedWrites.push(p) === 1) queueMicrotask(this.#allocateParked);
      return;
    }
    this.#resolveOne(p);
  }

  #resolveOne(p: ParkedRequest): void {
    if (p.op !== OP.read && p.op !== OP.write) {
      // Through the gate: ordered with resize() there.
      this.#resolveGated(p).catch((e: unknown) => this.#failResolved(p, e));
      return;
    }
    this.#resolving++;
    this.#resolve(p).catch((e: unknown) => this.#failResolved(p, e)).finally(() => {
      if (--this.#resolving === 0) this.#resolvedIdle?.();
    });
  }

  async #resolveGated(p: ParkedRequest): Promise<void> {
    const { op, offset: off, length: len } = p;
    if (op === OP.flush) {
      await this.#gate.run(TAG.simple, () => this.#flush());
      return p.finish(0);
    }
    this.#checkWritableOpen();
    this.#checkRange(off, len, op === OP.discard ? 'discard' : 'writeZeroes');
    await this.#gate.run(TAG.simple, () => this.#zero(off, len));
    return p.finish(len);
  }

  /** A parked read or write: the map learns its clusters (allocated first), or this layer serves it. */
  async #resolve(p: ParkedRequest): Promise<void> {
    const { op, offset: off, length: len } = p;
    if (op !== OP.read) this.#checkWritableOpen();
    const end = Math.min(off + len, this.#size);
    if (end <= off) return p.finish(0);
    const firstTable = Math.floor(off / this.#cs / this.#l2Entries);
    const lastTable = Math.floor((end - 1) / this.#cs / this.#l2Entries);
    let slow = !this.#mapOn() || p.fua || lastTable - firstTable + 1 > MAX_MAP_TABLES;
    if (!slow && op === OP.write) {
      // Every cluster gets a writable host cluster holding its current
      // content (qcow2: data before the L2 entry); the guest data then goes in place.
      const jobs: Promise<void>[] = [];
      for (let vc = Math.floor(off / this.#cs); vc * this.#cs < end; vc++) jobs.push(this.#makeWritable(vc));
      await settleAll(jobs);
    }
    for (let attempt = 0; !slow; attempt++) {
      if (attempt === 3) {
        slow = true;
        break;
      }
      for (let i = firstTable; i <= lastTable; i++) await this.#l2For(i * this.#l2Entries);
      // Installed with no await in between: what the engine reads is what this layer holds.
      const tables: Array<Table | null> = [];
      for (let i = firstTable; i <= lastTable; i++) {
        const l2 = this.#l1Offset(i);
        const t = l2 ? this.#cache.peek(l2) ?? null : null;
        if (l2 && !t) break;
        tables.push(t);
      }
      if (tables.length !== lastTable - firstTable + 1) continue;
      let known = true;
      for (let vc = Math.floor(off / this.#cs); vc * this.#cs < end && known; vc++) {
        const e = this.#probe(tables[Math.floor(vc / this.#l2Entries) - firstTable]!, vc);
        known = e !== 0 && (op !== OP.write || (e & MAP_WRITABLE) !== 0);
      }
      if (!known) {
        slow = true; // compressed clusters (or a bad entry): served by this layer
        break;
      }
      tables.forEach((t, k) => {
        if (!this.#native!.has(firstTable + k)) this.#installTable(firstTable + k, t);
      });
      return p.retry();
    }
    // This layer serves it, through a buffer of its own.
    const buf = ioBuffer(end - off);
    if (op === OP.read) {
      const n = await this.#read(buf, off);
      p.copy(buf.subarray(0, n), true);
      return p.finish(n);
    }
    p.copy(buf, false);
    await this.#write(buf, off);
    if (p.fua) await this.#flush();
    return p.finish(end - off);
  }

  /**
   * The parked writes of one wakeup. Those whose clusters are writable
   * already, or are fresh clusters that read as zeros (no backing data
   * there: nothing to copy) and whose L2 table and refcount blocks are
   * cached, are allocated here with no await: one run of new host clusters
   * for all of them (refcounts set first, then the L2 entries, in cache;
   * a fresh cluster past the end of the file reads as zeros until its data
   * lands, as before), each table pushed to the engine once, then every
   * request retried. The rest take #resolve, one by one.
   */
  readonly #allocateParked = (): void => {
    const ps = this.#parkedWrites;
    this.#parkedWrites = [];
    if (this.#resizing) {
      this.#held.push(...ps);
      return;
    }
    if (!this.#mapOn() || this.readOnly || this.corrupt) {
      for (const p of ps) this.#resolveOne(p);
      return;
    }
    const cs = this.#cs;
    const per = this.#l2Entries;
    const fresh: number[] = []; // guest clusters to allocate, in order of first use
    const freshTable: Table[] = [];
    const freshOld: Mapping[] = [];
    const seen = new Set<number>();
    const tables = new Map<number, Table>(); // L1 slot -> table touched
    const ready: ParkedRequest[] = [];
    for (const p of ps) {
      const end = Math.min(p.offset + p.length, this.#size);
      const firstVc = Math.floor(p.offset / cs);
      const lastVc = Math.floor((end - 1) / cs);
      let ok = end > p.offset && Math.floor(lastVc / per) - Math.floor(firstVc / per) < MAX_MAP_TABLES;
      const mark = fresh.length;
      for (let vc = firstVc; ok && vc <= lastVc; vc++) {
        if (seen.has(vc)) continue; // an earlier request of this batch allocates it
        const slot = Math.floor(vc / per);
        let t = tables.get(slot);
        if (!t) {
          const l2 = this.#l1Offset(slot);
          t = l2 ? this.#cache.peek(l2) : undefined;
        }
        if (!t || this.#clusterLocks.has(vc)) {
          ok = false; // no table yet (or not cached), or #resolve is allocating this cluster
          break;
        }
        let m: Mapping;
        try {
          m = this.#decode(t, vc, 0, true);
        } catch {
          ok = false; // a bad entry: #resolve reports it
          break;
        }
        tables.set(slot, t);
        if (m.kind === 'data' && m.copied) continue;
        if (m.kind !== 'zero' && !(m.kind === 'unallocated' && this.#backingEmptyAt(vc))) {
          ok = false; // its content has to be copied first
          break;
        }
        fresh.push(vc);
        freshTable.push(t);
        freshOld.push(m);
      }
      if (!ok) {
        fresh.length = freshTable.length = freshOld.length = mark;
        this.#resolveOne(p);
        continue;
      }
      for (let k = mark; k < fresh.length; k++) seen.add(fresh[k]!);
      ready.push(p);
    }
    const n = fresh.length;
    if (n) {
      // Refcount blocks for the run, all cached, or the batch waits for them.
      const first = this.#nextFree;
      const blocks: Table[] = [];
      for (let s = Math.floor(first / this.#refPerBlock); s <= Math.floor((first + n - 1) / this.#refPerBlock); s++) {
        const rb = this.#reftableEntry(s);
        const t = rb ? this.#cache.peek(rb) : undefined;
        if (!t) {
          this.#refblock(s).then(() => this.#retryParked(ready), (e: unknown) => this.#failParked(ready, e));
          return;
        }
        blocks.push(t);
      }
      this.#nextFree += n;
      this.#hostEnd = this.#nextFree * cs;
      const base = Math.floor(first / this.#refPerBlock);
      for (let c = first; c < first + n; c++) {
        const b = blocks[Math.floor(c / this.#refPerBlock) - base]!;
        const i = c % this.#refPerBlock;
        const next = this.#getRef(b.buf, i) + 1;
        if (next >= 2 ** Math.min(this.#refBits, 32)) {
          this.#failParked(ready, this.#corrupt(`refcount of cluster ${c} would become ${next}`));
          return;
        }
        this.#setRef(b.buf, i, next);
      }
      for (const b of blocks) this.#cache.markDirty(b);
      // The refcounts are set (in cache): now the pointers.
      for (let k = 0; k < n; k++) {
        const vc = fresh[k]!;
        const t = freshTable[k]!;
        this.#setEntry(t.buf, (vc % per) * 8, (first + k) * cs, FLAG_COPIED);
        if (freshOld[k]!.kind !== 'unallocated') this.#freeLater(freshOld[k]!);
      }
    }
    for (const t of new Set(freshTable)) this.#cache.markDirty(t);
    const native = this.#native!;
    for (const [slot, t] of tables) {
      if (!native.has(slot)) this.#installTable(slot, t);
      else for (let k = 0; k < n; k++) if (Math.floor(fresh[k]! / per) === slot) native.set(fresh[k]!, this.#probe(t, fresh[k]!));
    }
    if (this.#retryTokens.length < ready.length) this.#retryTokens = new Uint32Array(ready.length * 2);
    let count = 0;
    for (const p of ready) {
      if (p.token === undefined) p.retry();
      else this.#retryTokens[count++] = p.token;
    }
    native.retryAll(this.#retryTokens, count);
    if (n) this.#maybeWriteback();
  };

  /** Puts parked writes back in the queue (what they waited for is cached now). */
  #retryParked(ps: ParkedRequest[]): void {
    for (const p of ps) this._resolve(p);
  }

  #failParked(ps: ParkedRequest[], e: unknown): void {
    for (const p of ps) this.#failResolved(p, e);
  }

  // A parked request failed: its Promise (#submitNative) gets the coded error, the engine the errno.
  #failResolved(p: ParkedRequest, e: unknown): void {
    if (this.#resolveErrors.size > 64) this.#resolveErrors.clear();
    this.#resolveErrors.set(`${p.op}:${p.offset}:${p.length}`, e as Error);
    p.finish(-errnoOf(e));
  }

  #checkWritableOpen(): void {
    if (this.readOnly || this.corrupt) {
      throw new BlockringError('ERR_READ_ONLY', `device '${this.path}' is open read-only${this.corrupt ? ' (image is corrupt)' : ''}`);
    }
  }

  async #makeWritable(vc: number): Promise<void> {
    const m = this.#lookupNow(vc) ?? await this.#lookup(vc);
    if (m.kind === 'data' && m.copied) return;
    await this.#locked(this.#clusterLocks, vc, async () => {
      const cur = await this.#lookup(vc);
      if (cur.kind === 'data' && cur.copied) return;
      await this.#allocateCluster(vc, cur, 0, null);
    });
  }

  // ---- mapping lookups ----

  #l1Offset(i: number): number {
    const hi = this.#l1.readUInt32BE(i * 8);
    const lo = this.#l1.readUInt32BE(i * 8 + 4);
    return (hi & OFFSET_MASK_HI) * 0x100000000 + (lo - (lo & 0x1ff));
  }

  #markMeta(offset: number, bytes: number): void {
    for (let c = offset / this.#cs; c < Math.ceil((offset + bytes) / this.#cs); c++) this.#metaClusters.add(c);
  }

  #corrupt(why: string): BlockringError {
    this.corrupt = true;
    this.#native?.reset(this.#size); // nothing more is written in place
    return new BlockringError('ERR_QCOW2_CORRUPT', `'${this.path}' is corrupt: ${why}; the image is now read-only`);
  }

  async #readMeta(off: number, buf: Buffer): Promise<void> {
    if (off % this.#cs || off + this.#cs > this.#hostEnd || this.#metaCollides(off)) {
      throw this.#corrupt(`metadata table at ${off} is misaligned, past the end of the file or on the header`);
    }
    await readFull(this.#file, buf, off);
  }

  #metaCollides(off: number): boolean {
    const h = this.#h;
    return off === 0 || (off >= h.l1TableOffset && off < h.l1TableOffset + this.#l1.length) ||
      (off >= h.refcountTableOffset && off < h.refcountTableOffset + h.refcountTableClusters * this.#cs);
  }

  /** The L2 table holding guest cluster vc, or null if L1 has none. */
  async #l2For(vc: number): Promise<Table | null> {
    const off = this.#l1Offset(Math.floor(vc / this.#l2Entries));
    if (!off) return null;
    return this.#cache.get(off);
  }

  /** What guest cluster vc maps to; with extended L2, for subcluster sc. */
  async #lookup(vc: number, sc = 0): Promise<Mapping> {
    return this.#decode(await this.#l2For(vc), vc, sc);
  }

  /** The mapping without waiting, when its L2 table is cached (the hot path); undefined otherwise. */
  #lookupNow(vc: number, sc = 0): Mapping | undefined {
    const off = this.#l1Offset(Math.floor(vc / this.#l2Entries));
    if (!off) return this.#decode(null, vc, sc);
    const t = this.#cache.peek(off);
    return t ? this.#decode(t, vc, sc) : undefined;
  }

  #decode(t: Table | null, vc: number, sc: number, probe = false): Mapping {
    const bad = (why: string): Error => (probe ? PROBE : this.#corrupt(why));
    const m: Mapping = { kind: 'unallocated', host: 0, copied: false, csize: 0, raw: 0 };
    if (!t) return m;
    const at = (vc % this.#l2Entries) * this.#entryBytes;
    const hi = t.buf.readUInt32BE(at);
    const lo = t.buf.readUInt32BE(at + 4);
    m.copied = (hi & FLAG_COPIED) !== 0;
    if (hi & FLAG_COMPRESSED) {
      const e = (BigInt(hi) << 32n) | BigInt(lo);
      const x = BigInt(62 - (this.#bits - 8));
      const raw = Number(e & ((1n << x) - 1n));
      const sectors = Number((e >> x) & ((1n << (62n - x)) - 1n)) + 1;
      m.kind = 'compressed';
      m.raw = raw;
      m.csize = sectors * 512 - (raw % 512);
      if (raw + 1 > this.#hostEnd) throw bad(`compressed cluster at ${raw} past the end of the file`);
      return m;
    }
    const host = (hi & OFFSET_MASK_HI) * 0x100000000 + (lo - (lo & 0x1ff));
    if (this.#extL2) {
      const bitmap = t.buf.readUInt32BE(at + 12); // allocation bits 0..31
      const zeros = t.buf.readUInt32BE(at + 8); // "reads as zero" bits 32..63
      if (bitmap & (1 << sc) >>> 0) {
        m.kind = 'data';
        m.host = host;
      } else if (zeros & (1 << sc) >>> 0) {
        m.kind = 'zero';
      }
    } else if (lo & ZERO_FLAG && this.version === 3) {
      m.kind = 'zero';
      m.host = host; // preallocated zero cluster (may be 0)
    } else if (host) {
      m.kind = 'data';
      m.host = host;
    }
    if (m.kind === 'data') {
      if (host % this.#cs) throw bad(`data cluster at ${host} is not cluster aligned`);
      if (host + 1 > this.#hostEnd) throw bad(`data cluster at ${host} lies past the end of the file`);
      if (this.#metaClusters.has(host / this.#cs)) throw bad(`data cluster at ${host} overlaps metadata`);
    }
    return m;
  }

  // ---- read ----

  /** Reads [off, off + b.length) clipped to the virtual size. */
  #read(b: Buffer, off: number): Promise<number> {
    const end = Math.min(off + b.length, this.#size);
    if (end <= off) return Promise.resolve(0);
    // Hot path: one cluster, cached L2, allocated: one read of the image file.
    if (!this.#extL2 && Math.floor(off / this.#cs) === Math.floor((end - 1) / this.#cs)) {
      const m = this.#lookupNow(Math.floor(off / this.#cs));
      if (m?.kind === 'data') {
        const n = end - off;
        const view = n === b.length ? b : b.subarray(0, n);
        return this.#file.read(view, m.host + (off % this.#cs)).then((got) => {
          if (got < n) view.fill(0, got);
          return n;
        });
      }
    }
    return this.#readPieces(b, off, end);
  }

  async #readPieces(b: Buffer, off: number, end: number): Promise<number> {
    const gran = this.#extL2 ? this.#cs / 32 : this.#cs;
    const jobs: Promise<void>[] = [];
    // Contiguous host runs are read with one request.
    let run: { host: number; at: number; len: number } | null = null;
    const flushRun = (): void => {
      if (run) {
        const r = run;
        jobs.push(readFull(this.#file, b.subarray(r.at, r.at + r.len), r.host).then(() => undefined));
        run = null;
      }
    };
    for (let pos = off; pos < end;) {
      const vc = Math.floor(pos / this.#cs);
      const inC = pos % this.#cs;
      const sc = Math.floor(inC / gran);
      const n = Math.min(end - pos, gran - (inC % gran));
      const at = pos - off;
      const m = this.#lookupNow(vc, sc) ?? await this.#lookup(vc, sc);
      if (m.kind === 'data') {
        const host = m.host + inC;
        if (run && run.host + run.len === host) run.len += n;
        else {
          flushRun();
          run = { host, at, len: n };
        }
      } else {
        flushRun();
        const piece = b.subarray(at, at + n);
        if (m.kind === 'zero' || (m.kind === 'unallocated' && !this.backing)) piece.fill(0);
        else if (m.kind === 'unallocated') jobs.push(this.#readBacking(piece, pos));
        else jobs.push(this.#readCompressed(m).then((data) => void data.copy(piece, 0, inC, inC + n)));
      }
      pos += n;
    }
    flushRun();
    await Promise.all(jobs);
    return end - off;
  }

  async #readBacking(piece: Buffer, pos: number): Promise<void> {
    const bk = this.backing!;
    const n = pos < bk.size ? await readFull(bk, piece.subarray(0, Math.min(piece.length, bk.size - pos)), pos) : 0;
    piece.fill(0, n);
  }

  async #readCompressed(m: Mapping): Promise<Buffer> {
    if (this.#lastCompressed?.raw === m.raw) return this.#lastCompressed.data;
    // Compressed data starts anywhere: read the aligned span around it.
    const start = m.raw - (m.raw % 4096);
    const len = Math.min(m.csize + (m.raw - start), this.#hostEnd - start);
    const span = ioBuffer(Math.ceil(len / 4096) * 4096);
    await readFull(this.#file, span, start);
    const src = span.subarray(m.raw - start, len);
    if (this.#h.incompatible & INCOMPAT_COMPRESSION && this.#h.compressionType !== 0) {
      throw new BlockringError('ERR_QCOW2_UNSUPPORTED', `'${this.path}': zstd-compressed clusters are not supported`);
    }
    let data: Buffer;
    try {
      data = zlib.inflateRawSync(src, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: this.#cs });
    } catch (e) {
      throw this.#corrupt(`compressed cluster at ${m.raw} does not inflate (${(e as Error).message})`);
    }
    if (data.length !== this.#cs) {
      const full = Buffer.alloc(this.#cs);
      data.copy(full);
      if (data.length < this.#cs) throw this.#corrupt(`compressed cluster at ${m.raw} is short`);
      data = full;
    }
    this.#lastCompressed = { raw: m.raw, data };
    return data;
  }

  // ---- allocation (refcounts) ----

  /** Serializes fn per key (a guest cluster, an L1 slot, a refcount slot). */
  async #locked<T>(map: Map<unknown, Promise<void>>, key: unknown, fn: () => Promise<T>): Promise<T> {
    const prev = map.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = (prev ?? Promise.resolve()).then(() => mine);
    map.set(key, chained);
    try {
      if (prev) await prev;
      return await fn();
    } finally {
      release();
      if (map.get(key) === chained) map.delete(key);
    }
  }

  /** Reserves n contiguous fresh host clusters and gives each refcount 1. */
  async #allocClusters(n: number, meta: boolean): Promise<number> {
    const first = this.#nextFree;
    this.#nextFree += n;
    this.#hostEnd = this.#nextFree * this.#cs;
    if (meta) for (let i = 0; i < n; i++) this.#metaClusters.add(first + i);
    for (let i = 0; i < n; i++) await this.#refcountAdd(first + i, 1);
    return first * this.#cs;
  }

  async #refcountAdd(cluster: number, delta: number): Promise<void> {
    const slot = Math.floor(cluster / this.#refPerBlock);
    const cached = this.#reftableEntry(slot);
    const block = (cached && this.#cache.peek(cached)) || await this.#refblock(slot);
    const i = cluster % this.#refPerBlock;
    const cur = this.#getRef(block.buf, i);
    const next = cur + delta;
    if (next < 0 || next >= 2 ** Math.min(this.#refBits, 32)) {
      throw this.#corrupt(`refcount of cluster ${cluster} would become ${next}`);
    }
    this.#setRef(block.buf, i, next);
    this.#cache.markDirty(block);
  }

  #getRef(buf: Buffer, i: number): number {
    const bits = this.#refBits;
    if (bits === 16) return buf.readUInt16BE(i * 2);
    if (bits === 32) return buf.readUInt32BE(i * 4);
    if (bits === 8) return buf.readUInt8(i);
    const bitPos = i * bits; // 1, 2, 4 bits: within a byte, LSB first
    return (buf.readUInt8(bitPos >> 3) >> (bitPos & 7)) & ((1 << bits) - 1);
  }

  #setRef(buf: Buffer, i: number, v: number): void {
    const bits = this.#refBits;
    if (bits === 16) buf.writeUInt16BE(v, i * 2);
    else if (bits === 32) buf.writeUInt32BE(v, i * 4);
    else if (bits === 8) buf.writeUInt8(v, i);
    else {
      const bitPos = i * bits;
      const mask = ((1 << bits) - 1) << (bitPos & 7);
      const byte = buf.readUInt8(bitPos >> 3);
      buf.writeUInt8((byte & ~mask) | ((v << (bitPos & 7)) & mask), bitPos >> 3);
    }
  }

  /** The refcount block for a reftable slot, allocating one (and growing the table) if needed. */
  async #refblock(slot: number): Promise<Table> {
    const existing = this.#reftableEntry(slot);
    if (existing) return this.#cache.get(existing);
    return this.#locked(this.#slotLocks, `r${slot}`, async () => {
      const again = this.#reftableEntry(slot);
      if (again) return this.#cache.get(again);
      if ((slot + 1) * 8 > this.#reftable.length) await this.#growReftable(slot);
      // The new block goes at the end; if it covers itself, its own refcount
      // lives in it, else in another block (recursively, always further on).
      const idx = this.#nextFree++;
      this.#hostEnd = this.#nextFree * this.#cs;
      this.#metaClusters.add(idx);
      const t = this.#cache.create(idx * this.#cs);
      putU64(this.#reftable, slot * 8, idx * this.#cs);
      this.#reftableDirty = true;
      if (Math.floor(idx / this.#refPerBlock) === slot) {
        this.#setRef(t.buf, idx % this.#refPerBlock, 1);
      } else {
        await this.#refcountAdd(idx, 1);
      }
      return t;
    });
  }

  #reftableEntry(slot: number): number {
    if ((slot + 1) * 8 > this.#reftable.length) return 0;
    const hi = this.#reftable.readUInt32BE(slot * 8);
    const lo = this.#reftable.readUInt32BE(slot * 8 + 4);
    return (hi & OFFSET_MASK_HI) * 0x100000000 + (lo - (lo & 0x1ff));
  }

  async #growReftable(slot: number): Promise<void> {
    // Room for twice the slots needed now, plus the new table's own clusters.
    const slots = Math.max((slot + 1) * 2, (this.#reftable.length / 8) * 2);
    const clusters = Math.ceil((slots * 8) / this.#cs);
    if (clusters * this.#cs > 8 << 20) throw this.#corrupt('refcount table would exceed 8 MiB');
    const oldOff = this.#h.refcountTableOffset;
    const oldClusters = this.#h.refcountTableClusters;
    const first = this.#nextFree;
    this.#nextFree += clusters;
    this.#hostEnd = this.#nextFree * this.#cs;
    for (let i = 0; i < clusters; i++) this.#metaClusters.add(first + i);
    const table = ioBuffer(clusters * this.#cs);
    this.#reftable.copy(table);
    this.#reftable = table;
    this.#h.refcountTableOffset = first * this.#cs;
    this.#h.refcountTableClusters = clusters;
    this.#reftableDirty = true;
    this.#headerDirty = true;
    for (let i = 0; i < clusters; i++) await this.#refcountAdd(first + i, 1);
    for (let i = 0; i < oldClusters; i++) this.#pendingFrees.push(oldOff + i * this.#cs);
  }

  /** The L2 table for vc, allocating an empty one if L1 has none. */
  async #ensureL2(vc: number): Promise<Table> {
    const l1i = Math.floor(vc / this.#l2Entries);
    const off = this.#l1Offset(l1i);
    const t = (off && this.#cache.peek(off)) || await this.#l2For(vc);
    if (t) return t;
    return this.#locked(this.#slotLocks, `l${l1i}`, async () => {
      const again = await this.#l2For(vc);
      if (again) return again;
      const off = await this.#allocClusters(1, true);
      const table = this.#cache.create(off);
      this.#setEntry(this.#l1, l1i * 8, off, FLAG_COPIED);
      this.#l1Dirty++;
      return table;
    });
  }

  #setEntry(buf: Buffer, at: number, host: number, flagsHi: number, flagsLo = 0): void {
    buf.writeUInt32BE((flagsHi | Math.floor(host / 0x100000000)) >>> 0, at);
    buf.writeUInt32BE(((host >>> 0) | flagsLo) >>> 0, at + 4);
  }

  /** Clusters whose refcount drops once the pointer change is durable. */
  #freeLater(m: Mapping): void {
    if (m.kind === 'compressed') {
      const first = Math.floor(m.raw / this.#cs);
      const last = Math.floor((m.raw + m.csize - 1) / this.#cs);
      for (let c = first; c <= last; c++) this.#pendingFrees.push(c * this.#cs);
    } else if (m.host) {
      this.#pendingFrees.push(m.host);
    }
  }

  // ---- write ----

  async #write(b: Buffer, off: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (let pos = off; pos < off + b.length;) {
      const vc = Math.floor(pos / this.#cs);
      const inC = pos % this.#cs;
      const n = Math.min(off + b.length - pos, this.#cs - inC);
      jobs.push(this.#writeCluster(vc, inC, b.subarray(pos - off, pos - off + n)));
      pos += n;
    }
    await settleAll(jobs);
  }

  async #writeCluster(vc: number, inC: number, data: Buffer): Promise<void> {
    if (this.#cow) await this.#cow.beforeWrite(vc);
    const m = this.#lookupNow(vc) ?? await this.#lookup(vc);
    if (m.kind === 'data' && m.copied) return this.#writeHost(data, m.host + inC);
    await this.#locked(this.#clusterLocks, vc, async () => {
      const cur = await this.#lookup(vc);
      if (cur.kind === 'data' && cur.copied) return this.#writeHost(data, cur.host + inC);
      await this.#allocateCluster(vc, cur, inC, data);
    });
  }

  async #writeHost(data: Buffer, host: number): Promise<void> {
    this.#unsynced = true;
    const n = await this.#file.write(data, host);
    if (n !== data.length) throw new BlockringError('ERR_QCOW2_SHORT_WRITE', `short write to '${this.path}' at ${host}`);
  }

  /** Called with the cluster lock held; cur is its current mapping. */
  async #allocateCluster(vc: number, cur: Mapping, inC: number, data: Buffer | null): Promise<void> {
    const table = await this.#ensureL2(vc);
    const host = await this.#allocClusters(1, false);
    const zeroSource = cur.kind === 'zero' || (cur.kind === 'unallocated' && this.#backingEmptyAt(vc));
    if (data && data.length === this.#cs) {
      await this.#writeHost(data, host);
    } else if (zeroSource) {
      // A fresh cluster past the old end of the file reads as zeros already.
      if (data) await this.#writeHost(data, host + inC);
    } else {
      const full = ioBuffer(this.#cs);
      const vstart = vc * this.#cs;
      await this.#read(full.subarray(0, Math.max(0, Math.min(this.#cs, this.#size - vstart))), vstart);
      if (data) data.copy(full, inC);
      await this.#writeHost(full, host);
    }
    // Data is written: now the pointer (its refcount is already set in cache).
    const t = this.#cache.peek(table.offset) ?? table;
    this.#setEntry(t.buf, (vc % this.#l2Entries) * 8, host, FLAG_COPIED);
    this.#cache.markDirty(t);
    this.#pushEntry(t, vc);
    if (cur.kind !== 'unallocated') this.#freeLater(cur);
    this.#maybeWriteback();
  }

  #backingEmptyAt(vc: number): boolean {
    return !this.backing || vc * this.#cs >= this.backing.size;
  }

  // ---- discard / write-zeroes ----

  async #zero(off: number, len: number): Promise<number> {
    const end = off + len;
    const jobs: Promise<void>[] = [];
    for (let pos = off; pos < end;) {
      const vc = Math.floor(pos / this.#cs);
      const inC = pos % this.#cs;
      const n = Math.min(end - pos, this.#cs - inC);
      const whole = n === this.#cs || (inC === 0 && pos + n >= this.#size);
      // A mapped cluster keeps its host cluster: the mapping shows it.
      jobs.push(whole && !this.#cow?.covers(vc) ? this.#zeroCluster(vc) : this.#zeroPartial(vc, inC, n));
      pos += n;
    }
    await settleAll(jobs);
    return len;
  }

  async #zeroPartial(vc: number, inC: number, n: number): Promise<void> {
    const m = await this.#lookup(vc);
    if (m.kind === 'zero' || (m.kind === 'unallocated' && this.#backingEmptyAt(vc))) return;
    await this.#writeCluster(vc, inC, ioBuffer(n));
  }

  async #zeroCluster(vc: number): Promise<void> {
    await this.#locked(this.#clusterLocks, vc, async () => {
      const cur = await this.#lookup(vc);
      const needZeroFlag = !this.#backingEmptyAt(vc);
      if (cur.kind === 'zero') return;
      if (cur.kind === 'unallocated' && !needZeroFlag) return;
      if (needZeroFlag && this.version === 2) {
        // v2 has no zero clusters: only real zeros hide the backing data.
        if (cur.kind === 'data' && cur.copied) return this.#writeHost(ioBuffer(this.#cs), cur.host);
        return this.#allocateCluster(vc, cur, 0, ioBuffer(this.#cs));
      }
      const table = await this.#ensureL2(vc);
      const t = this.#cache.peek(table.offset) ?? table;
      if (needZeroFlag) this.#setEntry(t.buf, (vc % this.#l2Entries) * 8, 0, 0, ZERO_FLAG);
      else this.#setEntry(t.buf, (vc % this.#l2Entries) * 8, 0, 0);
      this.#cache.markDirty(t);
      this.#pushEntry(t, vc);
      if (cur.kind !== 'unallocated') this.#freeLater(cur);
      this.#maybeWriteback();
    });
  }

  // ---- allocation map ----

  async #allocation(off: number, end: number): Promise<Extent[]> {
    const out: Extent[] = [];
    const push = (o: number, n: number, type: Extent['type']): void => {
      const last = out[out.length - 1];
      if (last && last.type === type && last.offset + last.length === o) last.length += n;
      else out.push({ offset: o, length: n, type });
    };
    const gran = this.#extL2 ? this.#cs / 32 : this.#cs;
    for (let pos = off; pos < end;) {
      const vc = Math.floor(pos / this.#cs);
      const inC = pos % this.#cs;
      const n = Math.min(end - pos, gran - (inC % gran));
      const m = await this.#lookup(vc, Math.floor(inC / gran));
      if (m.kind === 'data' || m.kind === 'compressed') push(pos, n, 'data');
      else if (m.kind === 'zero') push(pos, n, 'zero');
      else if (!this.backing || pos >= this.backing.size) push(pos, n, 'hole');
      else {
        const bend = Math.min(pos + n, this.backing.size);
        if (this.backing.allocation) {
          for (const e of await this.backing.allocation(pos, bend - pos)) push(e.offset, e.length, e.type === 'hole' ? 'hole' : 'backing');
        } else push(pos, bend - pos, 'backing');
        if (bend < pos + n) push(bend, pos + n - bend, 'hole');
      }
      pos += n;
    }
    return out;
  }

  // ---- resize ----

  async #resize(size: number): Promise<void> {
    if (size < this.#size) throw new BlockringError('ERR_NOT_SUPPORTED', 'shrinking a qcow2 image is not supported');
    // Parked requests allocate outside the gate (L2 tables: L1 entries):
    // none may run while L1 is copied and swapped.
    this.#resizing = true;
    try {
      if (this.#resolving) await new Promise<void>((r) => (this.#resolvedIdle = r));
      this.#resolvedIdle = null;
      await this.#grow(size);
    } finally {
      this.#resizing = false;
      const held = this.#held;
      this.#held = [];
      for (const p of held) this._resolve(p);
    }
  }

  async #grow(size: number): Promise<void> {
    const need = Math.ceil(size / (this.#cs * this.#l2Entries));
    if (need > this.#h.l1Size) {
      if (need * 8 > 32 << 20) throw rangeError('ERR_OUT_OF_RANGE', 'size needs an L1 table larger than 32 MiB');
      // A new, larger L1 table; the header points to it after it is durable.
      await this.#writebackNow();
      const clusters = Math.ceil((need * 8) / this.#cs);
      const off = await this.#allocClusters(clusters, true);
      const l1 = ioBuffer(clusters * this.#cs);
      this.#l1.copy(l1);
      const oldOff = this.#h.l1TableOffset;
      const oldClusters = Math.ceil(this.#l1.length / this.#cs);
      await this.#writebackNow(); // refcounts of the new table
      await this.#writeMeta(l1, off);
      await this.#sync();
      this.#l1Full = l1;
      this.#l1 = l1.subarray(0, need * 8);
      this.#h.l1TableOffset = off;
      this.#h.l1Size = need;
      for (let i = 0; i < oldClusters; i++) this.#pendingFrees.push(oldOff + i * this.#cs);
    }
    this.#h.size = size;
    this.#size = size;
    this.#native?.reset(size);
    this.#headerDirty = true;
    await this.#writebackNow();
  }

  // ---- writeback and flush ----

  #maybeWriteback(): void {
    if (this.#cache.dirtyBytes > this.#cache.limit / 2 && !this.#writeback) {
      this.#writebackNow().catch(() => undefined); // errors surface at the next flush
    }
  }

  async #flush(): Promise<void> {
    await this.#writebackNow();
    await this.#sync();
  }

  /** Runs a writeback pass, or waits for the running one and runs another. */
  #writebackNow(): Promise<void> {
    if (this.#writeback) {
      this.#writebackAgain = true;
      return this.#writeback;
    }
    this.#writeback = (async () => {
      try {
        do {
          this.#writebackAgain = false;
          await this.#writebackPass();
        } while (this.#writebackAgain);
      } finally {
        this.#writeback = null;
      }
    })();
    return this.#writeback;
  }

  async #sync(): Promise<void> {
    this.#unsynced = false;
    await this.#file.flush();
  }

  async #writeMeta(buf: Buffer, off: number): Promise<void> {
    const n = await this.#file.write(buf, off);
    if (n !== buf.length) throw new BlockringError('ERR_QCOW2_SHORT_WRITE', `short metadata write to '${this.path}' at ${off}`);
  }

  async #writebackPass(): Promise<void> {
    // Snapshots, pointers first (see the comment at the top of the file).
    const header = this.#headerDirty ? this.#headerBytes() : null;
    this.#headerDirty = false;
    const reftable = this.#reftableDirty ? copyIo(this.#reftable) : null;
    const reftableOff = this.#h.refcountTableOffset;
    this.#reftableDirty = false;
    const l1 = this.#l1Dirty ? copyIo(this.#l1Full) : null;
    const l1Off = this.#h.l1TableOffset;
    this.#l1Dirty = 0;
    const frees = this.#pendingFrees.splice(0);
    const dirty = this.#cache.dirtyTables();
    const l2s: Array<{ t: Table; gen: number; copy: Buffer }> = [];
    const rbs: Array<{ t: Table; gen: number; copy: Buffer }> = [];
    const isRefblock = new Set<number>();
    for (let i = 0; i < this.#reftable.length / 8; i++) {
      const e = this.#reftableEntry(i);
      if (e) isRefblock.add(e);
    }
    for (const t of dirty) if (!isRefblock.has(t.offset)) l2s.push({ t, gen: t.gen, copy: copyIo(t.buf) });
    for (const t of dirty) if (isRefblock.has(t.offset)) rbs.push({ t, gen: t.gen, copy: copyIo(t.buf) });
    let pending = this.#unsynced;
    const barrier = async (): Promise<void> => {
      if (pending) await this.#sync();
      pending = false;
    };
    if (rbs.length) {
      await Promise.all(rbs.map((r) => this.#writeMeta(r.copy, r.t.offset)));
      for (const r of rbs) this.#cache.markClean(r.t, r.gen);
      pending = true;
    }
    if (reftable) {
      await barrier();
      await this.#writeMeta(reftable, reftableOff);
      pending = true;
    }
    if (header) {
      await barrier();
      await this.#writeMeta(header, 0);
      pending = true;
    }
    if (l2s.length) {
      // A fresh cluster the engine writes after its L2 entry was set (#allocateParked,
      // #makeWritable: it reads as zeros until then) may lie past the end of the file
      // still, and an entry there is corrupt (qemu-img check). Such entries go out as
      // reading zeros (what the cluster held before) and their table stays dirty; the
      // file length (fstat: a vhost-user-blk server's writes count too) is taken before
      // the barrier, so everything below it is durable after.
      const file = this.#file as HostFile & Partial<Pick<BlockDevice, '_fileLength'>>;
      const len = file._fileLength ? file._fileLength() : -1;
      const fileEnd = len < 0 ? Infinity : len; // a wrap()ped file: data always precedes its entry
      if (fileEnd < this.#hostEnd) pending = true;
      await barrier();
      const held = fileEnd < this.#hostEnd ? l2s.map((r) => this.#holdPastEnd(r.copy, fileEnd)) : null;
      await Promise.all(l2s.map((r) => this.#writeMeta(r.copy, r.t.offset)));
      l2s.forEach((r, k) => {
        if (!held?.[k]) this.#cache.markClean(r.t, r.gen);
      });
      pending = true;
    }
    if (l1) {
      await barrier();
      await this.#writeMeta(l1, l1Off);
      pending = true;
    }
    if (frees.length) {
      await barrier();
      for (const f of frees) await this.#refcountAdd(f / this.#cs, -1);
      this.#writebackAgain = true; // the dropped refcounts go out in the next pass
    }
  }

  /** Rewrites entries of an L2 snapshot that point at or past end as zero clusters; true if any did. */
  #holdPastEnd(copy: Buffer, end: number): boolean {
    let any = false;
    for (let at = 0; at < copy.length; at += this.#entryBytes) {
      const hi = copy.readUInt32BE(at);
      if (hi & FLAG_COMPRESSED) continue;
      const lo = copy.readUInt32BE(at + 4);
      const host = (hi & OFFSET_MASK_HI) * 0x100000000 + (lo - (lo & 0x1ff));
      if (!host || host < end) continue;
      this.#setEntry(copy, at, 0, 0, this.version === 3 ? ZERO_FLAG : 0);
      any = true;
    }
    return any;
  }

  /** The header cluster with the current fields (v3 fields after byte 72 kept as read). */
  #headerBytes(): Buffer {
    const b = this.#head;
    b.writeUInt32BE(0x514649fb, 0);
    b.writeUInt32BE(this.#h.version, 4);
    putU64(b, 8, this.#h.backingFileOffset);
    b.writeUInt32BE(this.#h.backingFileSize, 16);
    b.writeUInt32BE(this.#h.clusterBits, 20);
    putU64(b, 24, this.#h.size);
    b.writeUInt32BE(this.#h.cryptMethod, 32);
    b.writeUInt32BE(this.#h.l1Size, 36);
    putU64(b, 40, this.#h.l1TableOffset);
    putU64(b, 48, this.#h.refcountTableOffset);
    b.writeUInt32BE(this.#h.refcountTableClusters, 56);
    b.writeUInt32BE(this.#h.nbSnapshots, 60);
    putU64(b, 64, this.#h.snapshotsOffset);
    if (this.#h.version === 3) putU64(b, 72, this.#h.incompatible);
    return copyIo(b);
  }

  // ---- mapped copy-on-write: what qcow2-map.ts needs ----

  #cowHost(): CowHost {
    const cs = this.#cs;
    const backing = this.backing as (BackingDevice & { _fd(): number }) | null;
    const file = this.#file as HostFile & Partial<Pick<BlockDevice, '_fd' | 'writeZeroes' | 'resize'>>;
    if (!file._fd || !file.writeZeroes || !file.resize) {
      throw new BlockringError('ERR_NOT_SUPPORTED', `'${this.path}': the image file is not a plain file and cannot be mapped`);
    }
    const fileFd = file._fd.bind(file);
    const zeroes = file.writeZeroes.bind(file);
    const truncate = file.resize.bind(file);
    return {
      path: this.path,
      size: this.#size,
      clusterSize: cs,
      readOnly: this.readOnly || this.corrupt,
      overlayFd: fileFd,
      base: () => (backing ? { fd: backing._fd(), size: backing.size } : null),
      lookup: (vc) => this.#lookup(vc),
      prepare: async () => {
        // Every L2 table now, so copy-ups only ever fill entries in.
        for (let vc = 0; vc * cs < this.#size; vc += this.#l2Entries) await this.#ensureL2(vc);
      },
      reserve: async (n) => {
        const first = await this.#allocClusters(n, false);
        const hosts = Array.from({ length: n }, (_, i) => first + i * cs);
        try {
          // The space is allocated now, so a copy-up in a fault cannot meet ENOSPC.
          await zeroes(first, n * cs).catch(async (e: { code?: string }) => {
            // No FALLOC_FL_ZERO_RANGE (tmpfs, some FUSE): real zeros allocate the space as well.
            if (e.code !== 'EOPNOTSUPP' && e.code !== 'ENOTSUP' && e.code !== 'EINVAL') throw e;
            const z = Buffer.alloc(Math.min(n * cs, 1 << 20));
            for (let at = 0; at < n * cs; at += z.length) await this.#writeMeta(z.subarray(0, Math.min(z.length, n * cs - at)), first + at);
          });
        } catch (e) {
          for (const h of hosts) await this.#refcountAdd(h / cs, -1);
          throw e;
        }
        return hosts;
      },
      release: async (hosts) => {
        for (const h of hosts) await this.#refcountAdd(h / cs, -1);
        // Unused reservations at the end of the file give their space back.
        const freed = new Set(hosts.map((h) => h / cs));
        let end = this.#nextFree;
        while (end > 0 && freed.has(end - 1)) end--;
        if (end < this.#nextFree) {
          this.#nextFree = end;
          this.#hostEnd = end * cs;
          await truncate(end * cs);
        }
      },
      adopt: (vc, host) => this.#locked(this.#clusterLocks, vc, async () => {
        const cur = await this.#lookup(vc);
        const table = await this.#ensureL2(vc);
        const t = this.#cache.peek(table.offset) ?? table;
        this.#unsynced = true; // the fault's pwrite and stores: synced before the L2 entry goes out
        this.#setEntry(t.buf, (vc % this.#l2Entries) * 8, host, FLAG_COPIED);
        this.#cache.markDirty(t);
        this.#pushEntry(t, vc);
        if (cur.kind !== 'unallocated') this.#freeLater(cur);
        this.#maybeWriteback();
      }),
      run: (fn) => this.#gate.run(TAG.simple, fn),
      flush: () => this.flush(),
    };
  }

  // ---- repair (image left dirty with lazy refcounts) ----

  /** Rebuilds every refcount from the L1/L2 tables, as `qemu-img check -r all` would. */
  async #repair(): Promise<void> {
    const counts = new Map<number, number>();
    const ref = (off: number, n = 1): void => {
      const c = Math.floor(off / this.#cs);
      counts.set(c, (counts.get(c) ?? 0) + n);
    };
    ref(0);
    for (let i = 0; i < Math.ceil(this.#l1.length / this.#cs); i++) ref(this.#h.l1TableOffset + i * this.#cs);
    for (let i = 0; i < this.#h.refcountTableClusters; i++) ref(this.#h.refcountTableOffset + i * this.#cs);
    for (let i = 0; i < this.#h.l1Size; i++) {
      const l2 = this.#l1Offset(i);
      if (!l2) continue;
      ref(l2);
      const t = await this.#cache.get(l2);
      for (let e = 0; e < this.#l2Entries; e++) {
        const m = await this.#lookup(i * this.#l2Entries + e);
        if (m.kind === 'compressed') {
          for (let c = Math.floor(m.raw / this.#cs); c <= Math.floor((m.raw + m.csize - 1) / this.#cs); c++) ref(c * this.#cs);
        } else if (m.host) ref(m.host);
      }
      void t;
    }
    // Existing refcount blocks keep their places; every entry is rewritten.
    for (let slot = 0; slot < this.#reftable.length / 8; slot++) {
      const rb = this.#reftableEntry(slot);
      if (rb) ref(rb);
    }
    for (let slot = 0; slot < this.#reftable.length / 8; slot++) {
      const rb = this.#reftableEntry(slot);
      if (!rb) continue;
      const t = await this.#cache.get(rb);
      for (let i = 0; i < this.#refPerBlock; i++) this.#setRef(t.buf, i, counts.get(slot * this.#refPerBlock + i) ?? 0);
      this.#cache.markDirty(t);
      for (let i = 0; i < this.#refPerBlock; i++) counts.delete(slot * this.#refPerBlock + i);
    }
    for (const [c, n] of counts) await this.#refcountAdd(c, n); // clusters in blocks that did not exist
    await this.#flush();
    // Clear the dirty bit only once the refcounts are durable.
    this.#h.incompatible &= ~INCOMPAT_DIRTY;
    await this.#writeMeta(this.#headerBytes(), 0);
    await this.#sync();
  }
}

// The errno a parked request fails with (its Promise gets the coded error itself).
function errnoOf(e: unknown): number {
  const x = e as { errno?: unknown; code?: unknown };
  if (typeof x.errno === 'number' && x.errno !== 0) return Math.abs(x.errno);
  const c = os.constants.errno;
  if (x.code === 'ERR_READ_ONLY') return c.EROFS;
  if (x.code === 'ERR_OUT_OF_RANGE') return c.EINVAL;
  return c.EIO;
}

function toBuffer(v: ArrayBufferView): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Reads b.length bytes (the engine completes short transfers; fewer only at end of file), zeroing the rest. */
async function readFull(dev: { read(b: Buffer, o: number): Promise<number> } | BackingDevice, b: Buffer, off: number): Promise<number> {
  const got = await dev.read(b, off);
  if (got < b.length) b.fill(0, got);
  return got;
}

function copyIo(b: Buffer): Buffer {
  const c = ioBuffer(b.length);
  b.copy(c);
  return c;
}

/** Waits for every job, then rethrows the first failure (no write left running). */
async function settleAll(jobs: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

function checkPointers(p: string, table: Buffer, cs: number, fileSize: number, what: string): void {
  for (let i = 0; i < table.length; i += 8) {
    const hi = table.readUInt32BE(i);
    const lo = table.readUInt32BE(i + 4);
    const off = (hi & OFFSET_MASK_HI) * 0x100000000 + (lo - (lo & 0x1ff));
    if (!off) continue;
    if (off % cs) throw invalid(p, `${what} entry ${i / 8} is not cluster aligned`);
    if (off + cs > fileSize) throw invalid(p, `${what} entry ${i / 8} points past the end of the file`);
  }
}
