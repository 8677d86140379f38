import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { abortError, BlockIoError, BlockringError, checkSignal, deviceClosed, errnoName } from './errors';
import { mapDevice, type MappedRegion, type MapOptions } from './mapped-region';
import { native, type DeviceInfo } from './native';
import { FLAG, OP } from './records';
import { createReadStream, createWriteStream, type ReadStreamOptions, type WriteStreamOptions } from './streams';
import { checkBool, checkOptions, checkTag, checkUint, checkIoView, checkViews, typeError } from './validate';

/**
 * The ring's record of a native device it submits requests to: a
 * BlockDevice's, or the image device under a qcow2 image (which has no
 * BlockDevice of its own). The ring creates and owns it; a BlockDevice only
 * hands its own to the requests it makes.
 */
export class DeviceTarget {
  /** Requests enqueued and not yet settled: close and resize wait for 0. */
  inflight = 0;
  /** Resizes requested and not finished: close waits for them. */
  resizing = 0;
  /** Resizes run one after another, each after the requests before it. */
  resizeChain: Promise<void> = Promise.resolve();

  constructor(readonly handle: number, readonly path: string) {}
}

/** What a device needs from the ring that opened it. */
export interface DeviceOwner {
  /** Enqueues one checked request; resolves to its result (rejects with its error). */
  _request(dev: DeviceTarget, op: number, opName: string, tag: number, flags: number, buffers: RequestBuffers,
    offset: number, length: number, signal: AbortSignal | null): Promise<number>;
  _closeDevice(dev: BlockDevice): Promise<void>;
  _resizeDevice(dev: BlockDevice, size: number): Promise<void>;
  _deviceSize(dev: BlockDevice): number;
  _deviceFileLength(dev: BlockDevice): number;
  _deviceFd(dev: BlockDevice): number;
}

/** A request's buffers: one view (read, write), several (readv, writev), or none. */
export type RequestBuffers = ArrayBufferView | ArrayBufferView[] | null;

/** A request after validation, ready for the submission array. */
export interface NormalizedRequest {
  dev: DeviceTarget;
  op: number;
  opName: string;
  tag: number;
  flags: number;
  buffers: ArrayBufferView[] | null;
  offset: number;
  length: number;
  /** Aborts the request: dropped if not yet issued, else its result is discarded. */
  signal: AbortSignal | null;
}

export interface TagOption {
  /** SCSI task attribute; see README "Ordering". Default 'simple'. */
  tag?: 'simple' | 'ordered' | 'head';
  /** Rejects the request with an AbortError when aborted (see README "Cancellation"). */
  signal?: AbortSignal;
}
export interface WriteOptions extends TagOption {
  /** Force unit access: the write is durable when it completes (RWF_DSYNC). */
  fua?: boolean;
}
export interface FlushOptions extends TagOption {
  /** Also persist file metadata (fsync instead of fdatasync). */
  metadata?: boolean;
}
export interface WriteZeroesOptions extends TagOption {
  /** Let the range be deallocated rather than written (punch a hole). */
  unmap?: boolean;
}

const READ_KEYS = ['tag', 'signal'] as const;
const WRITE_KEYS = ['tag', 'signal', 'fua'] as const;
const FLUSH_KEYS = ['tag', 'signal', 'metadata'] as const;
const WRITE_ZEROES_KEYS = ['tag', 'signal', 'unmap'] as const;

// node:fs's read/write take (buffer, bufferOffset, length, position); ours
// take (buffer, deviceOffset, options). Say how to write the call instead.
function checkNotFsStyle(call: 'read' | 'write', args: IArguments): void {
  if (args.length <= 3 && (typeof args[2] !== 'number' && typeof args[2] !== 'bigint')) return;
  const [, bufferOffset, length, position] = args as unknown as [unknown, unknown, unknown, unknown];
  const buf = bufferOffset === 0 && length === undefined ? 'buffer' : `buffer.subarray(${String(bufferOffset)}, ${
    typeof bufferOffset === 'number' && typeof length === 'number' ? bufferOffset + length : `${String(bufferOffset)} + ${String(length)}`})`;
  throw typeError('ERR_INVALID_ARG_TYPE', `dev.${call}(buffer, offset, options?) takes the device offset second and ` +
    `reads or writes the whole buffer; node:fs's (buffer, offset, length, position) form is not supported: ` +
    `write dev.${call}(${buf}, ${String(position ?? 'position')})`);
}

/** One run of a device's address space, as `dev.allocation()` reports it. */
export interface Extent {
  offset: number;
  length: number;
  /** data: allocated in this image; zero: reads as zeros by metadata; backing: served by the backing chain; hole: unallocated anywhere (reads as zeros). */
  type: 'data' | 'zero' | 'backing' | 'hole';
}

const { ENXIO, EINVAL, EOPNOTSUPP } = os.constants.errno;

/** An open file or block device on a Ring. Obtain one with `ring.open()`. */
export class BlockDevice {
  /** Image format: always 'raw' here (see Qcow2Device). */
  readonly format = 'raw' as const;
  /** A raw device has no backing chain. */
  readonly backing = null;
  readonly path: string;
  /** Index of this device in its ring (the raw interface's device field). */
  readonly handle: number;
  readonly readOnly: boolean;
  /** Opened with O_DIRECT. */
  readonly direct: boolean;
  /** Writes past the end extend the device (files only). */
  readonly growable: boolean;
  readonly isBlockDevice: boolean;
  readonly logicalBlockSize: number;
  readonly physicalBlockSize: number;
  /** With O_DIRECT: offsets and lengths must be multiples of this (else 1). */
  readonly offsetAlignment: number;
  /** With O_DIRECT: buffer addresses must be multiples of this (else 1). */
  readonly memoryAlignment: number;
  readonly #owner: DeviceOwner;
  readonly #target: DeviceTarget;
  #closing: Promise<void> | null = null;
  #lastSize: number;
  /** @internal Opened with a writeLog: the ring's engine logs what it sends to the kernel. */
  _writeLogged = false;

  /** @internal */
  constructor(owner: DeviceOwner, target: DeviceTarget, info: DeviceInfo, direct: boolean) {
    this.#owner = owner;
    this.#target = target;
    this.path = target.path;
    this.handle = target.handle;
    this.readOnly = info.readOnly;
    this.direct = direct;
    this.growable = info.growable;
    this.isBlockDevice = info.isBlockDevice;
    this.logicalBlockSize = info.logicalBlockSize;
    this.physicalBlockSize = info.physicalBlockSize;
    this.offsetAlignment = info.offsetAlignment;
    this.memoryAlignment = info.memoryAlignment;
    this.#lastSize = info.size;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * Size in bytes: fixed unless the device is growable (then it follows
   * completed writes past the end) or resized.
   */
  get size(): number {
    if (!this.closed) this.#lastSize = this.#owner._deviceSize(this);
    return this.#lastSize;
  }

  /** @internal The file's length now (fstat): what every writer made it, other engines' too; -1 unknown. */
  _fileLength(): number {
    return this.closed ? -1 : this.#owner._deviceFileLength(this);
  }

  /**
   * Grows or shrinks a file to `size` bytes (ftruncate) once the device's
   * in-flight requests have completed.
   */
  // Only the argument checks are here, as for every request; the resize
  // itself (order after in-flight requests, against close) is Ring._resizeDevice's.
  resize(size: number | bigint): Promise<void> {
    return this.#run(async () => {
      const n = checkUint(size, 'size');
      this.#checkUsable(OP.write);
      if (this.isBlockDevice) throw new BlockringError('ERR_NOT_SUPPORTED', 'a block device cannot be resized');
      await this.#owner._resizeDevice(this, n);
    });
  }

  /** Reads `buffer.byteLength` bytes at device offset `offset`. Resolves to the bytes read. */
  // The request's own Promise, no async wrapper: a throw in the checks
  // rejects it (its stack has the caller's frame), and an error made at
  // completion gets the awaiting caller's frames (ring.ts rejectWithCallerStack).
  read(buffer: ArrayBufferView, offset: number | bigint, options?: TagOption): Promise<number> {
    try {
      checkNotFsStyle('read', arguments);
      return this.#rw(OP.read, 'read', checkIoView(buffer, 'buffer'), offset, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Writes all of `buffer` at device offset `offset`. Resolves to the bytes written. */
  write(buffer: ArrayBufferView, offset: number | bigint, options?: WriteOptions): Promise<number> {
    try {
      checkNotFsStyle('write', arguments);
      return this.#rw(OP.write, 'write', checkIoView(buffer, 'buffer'), offset, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  readv(buffers: ArrayBufferView[], offset: number | bigint, options?: TagOption): Promise<number> {
    return this.#run(() => this.#rw(OP.read, 'readv', checkViews(buffers, 'buffers'), offset, options));
  }

  writev(buffers: ArrayBufferView[], offset: number | bigint, options?: WriteOptions): Promise<number> {
    return this.#run(() => this.#rw(OP.write, 'writev', checkViews(buffers, 'buffers'), offset, options));
  }

  /** fdatasync (or fsync with `metadata: true`). An ORDERED flush is a full barrier. */
  flush(options?: FlushOptions): Promise<void> {
    return this.#run(() => {
      const o = checkOptions(options, 'options', FLUSH_KEYS);
      const flags = checkBool(o.metadata, 'options.metadata') ? FLAG.metadata : 0;
      return this.#request(OP.flush, 'flush', checkTag(o.tag, 'options.tag'), flags, null, 0, 0, o.signal);
    }).then(() => undefined);
  }

  /** Deallocates a range (punch-hole on files); it reads back as zeros. Resolves to the bytes covered. */
  discard(offset: number | bigint, length: number | bigint, options?: TagOption): Promise<number> {
    return this.#run(() => {
      const o = checkOptions(options, 'options', READ_KEYS);
      return this.#request(OP.discard, 'discard', checkTag(o.tag, 'options.tag'), 0, null,
        checkUint(offset, 'offset'), checkUint(length, 'length'), o.signal);
    });
  }

  /** Zeroes a range without transferring data. Resolves to the bytes covered. */
  writeZeroes(offset: number | bigint, length: number | bigint, options?: WriteZeroesOptions): Promise<number> {
    return this.#run(() => {
      const o = checkOptions(options, 'options', WRITE_ZEROES_KEYS);
      const flags = checkBool(o.unmap, 'options.unmap') ? FLAG.unmap : 0;
      return this.#request(OP.writeZeroes, 'writeZeroes', checkTag(o.tag, 'options.tag'), flags, null,
        checkUint(offset, 'offset'), checkUint(length, 'length'), o.signal);
    });
  }

  /**
   * Extents covering [offset, min(offset + length, size)), contiguous and in
   * order: 'data' and 'hole' from SEEK_DATA/SEEK_HOLE on files (all 'data'
   * where the filesystem cannot tell), all 'data' on block devices.
   */
  allocation(offset: number | bigint, length: number | bigint): Promise<Extent[]> {
    return this.#run(async () => {
      const start = checkUint(offset, 'offset');
      const len = checkUint(length, 'length');
      if (this.#closing) throw deviceClosed(this.path);
      const end = Math.min(start + len, this.size);
      const out: Extent[] = [];
      if (start >= end) return out;
      if (this.isBlockDevice) return [{ offset: start, length: end - start, type: 'data' }];
      const fd = this.#owner._deviceFd(this);
      let pos = start;
      while (pos < end) {
        let data = native.seekDataOrHole(fd, pos, true);
        if (data === -ENXIO) data = end; // no data after pos: the rest is a hole
        else if (data < 0) {
          if (out.length === 0 && (data === -EINVAL || data === -EOPNOTSUPP)) break; // EINVAL/EOPNOTSUPP: no hole support
          throw this.#seekError(data, pos);
        }
        if (data > pos) {
          const n = Math.min(data, end) - pos;
          out.push({ offset: pos, length: n, type: 'hole' });
          pos += n;
          if (pos >= end) break;
        }
        let hole = native.seekDataOrHole(fd, pos, false);
        if (hole === -ENXIO) hole = end; // truncated under us: treat as data to the end
        else if (hole < 0) throw this.#seekError(hole, pos);
        const n = Math.min(Math.max(hole, pos + 1), end) - pos;
        out.push({ offset: pos, length: n, type: 'data' });
        pos += n;
      }
      if (pos < end) out.push({ offset: pos, length: end - pos, type: 'data' });
      return out;
    });
  }

  #seekError(neg: number, offset: number): BlockIoError {
    return new BlockIoError({ errno: -neg, syscall: 'lseek', op: 'allocation', offset, path: this.path,
      message: `cannot map allocation (${errnoName(-neg)})` });
  }

  /** Memory-maps a range of the device (see MappedRegion). The mapping outlives close(). */
  map(options?: MapOptions): MappedRegion {
    if (this.#closing) throw deviceClosed(this.path);
    return mapDevice({ fd: this.#owner._deviceFd(this), path: this.path, size: this.size, readOnly: this.readOnly }, options);
  }

  /**
   * A Readable of bytes [start, end] (end inclusive, as fs.createReadStream),
   * `depth` reads in flight, aligned bounce buffers under O_DIRECT.
   */
  createReadStream(options?: ReadStreamOptions): Readable {
    return createReadStream(this, options);
  }

  /**
   * A Writable that writes from `start` on, `depth` writes in flight; under
   * O_DIRECT it stages into aligned buffers and merges a partial last block.
   */
  createWriteStream(options?: WriteStreamOptions): Writable {
    return createWriteStream(this, options);
  }

  /** `await using dev = await ring.open(...)`: close() at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal The open fd (servers duplicate it; it stays the ring's). */
  _fd(): number {
    if (this.#closing) throw deviceClosed(this.path);
    return this.#owner._deviceFd(this);
  }

  /** Waits for this device's requests, then closes it. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#owner._closeDevice(this);
    return this.#closing;
  }

  /** @internal Validates a request object for ring.submit(). */
  _normalize(op: number, opName: string, buffers: ArrayBufferView[] | null, o: Record<string, unknown>,
    name: string): NormalizedRequest {
    this.#checkUsable(op);
    let flags = 0;
    if (op === OP.write && checkBool(o.fua, `${name}.fua`)) flags |= FLAG.fua;
    if (op === OP.flush && checkBool(o.metadata, `${name}.metadata`)) flags |= FLAG.metadata;
    if (op === OP.writeZeroes && checkBool(o.unmap, `${name}.unmap`)) flags |= FLAG.unmap;
    const off = op === OP.flush ? 0 : checkUint(o.offset, `${name}.offset`);
    const len = buffers ? totalLength(buffers) : op === OP.flush ? 0 : checkUint(o.length, `${name}.length`);
    const signal = checkSignal(o.signal, `${name}.signal`);
    return { dev: this.#target, op, opName, tag: checkTag(o.tag, `${name}.tag`), flags, buffers, offset: off, length: len, signal };
  }

  #checkUsable(op: number): void {
    if (this.#closing) throw deviceClosed(this.path);
    if (op !== OP.read && op !== OP.flush && this.readOnly) {
      throw new BlockringError('ERR_READ_ONLY', `device '${this.path}' is open read-only`);
    }
  }

  // Validation errors become rejections, never synchronous throws.
  // buffers: read/write's one view (no array made for it) or readv/writev's views.
  #rw(op: number, opName: string, buffers: ArrayBufferView | ArrayBufferView[], offset: unknown, options: unknown): Promise<number> {
    if (options === undefined) {
      return this.#submit(op, opName, 0, 0, buffers, checkUint(offset, 'offset'), byteLength(buffers), undefined);
    }
    const o = checkOptions(options, 'options', op === OP.write ? WRITE_KEYS : READ_KEYS);
    const flags = op === OP.write && checkBool(o.fua, 'options.fua') ? FLAG.fua : 0;
    return this.#submit(op, opName, checkTag(o.tag, 'options.tag'), flags, buffers, checkUint(offset, 'offset'),
      byteLength(buffers), o.signal);
  }

  #request(op: number, opName: string, tag: number, flags: number, buffers: ArrayBufferView[] | null,
    offset: number, length: number, signalOption: unknown): Promise<number> {
    return this.#submit(op, opName, tag, flags, buffers, offset, length, signalOption);
  }

  // Checks the signal and the device, then enqueues.
  #submit(op: number, opName: string, tag: number, flags: number, buffers: RequestBuffers,
    offset: number, length: number, signalOption: unknown): Promise<number> {
    const signal = checkSignal(signalOption, 'options.signal');
    this.#checkUsable(op);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return this.#owner._request(this.#target, op, opName, tag, flags, buffers, offset, length, signal);
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

function byteLength(buffers: ArrayBufferView | ArrayBufferView[]): number {
  return Array.isArray(buffers) ? totalLength(buffers) : buffers.byteLength;
}

function totalLength(buffers: ArrayBufferView[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}
