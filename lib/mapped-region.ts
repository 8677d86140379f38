import { constants as bufferConstants } from 'node:buffer';

import { BlockringError, fromNative } from './errors';
import { native, type MappedRegionHandle } from './native';
import { submitQueuedRequests } from './queued-requests';
import { checkBool, checkOptions, checkUint, checkView, rangeError, typeError } from './validate';

export type MapMode = 'shared' | 'private';
export type Advice = 'normal' | 'random' | 'sequential' | 'willneed' | 'dontneed' | 'hugepage';

export interface MapOptions {
  /** Byte offset into the device; need not be page-aligned. Default 0. */
  offset?: number | bigint;
  /** Bytes to map. Default: from offset to the end of the device. */
  length?: number | bigint;
  /**
   * 'shared' (default): writes reach the file and every other mapping of it.
   * 'private': copy-on-write; writes land in private pages, the file is never modified.
   */
  mode?: MapMode;
  /** Map without write permission. Default: true for a shared mapping of a read-only device. */
  readOnly?: boolean;
}

export interface SyncOptions {
  /** MS_ASYNC: schedule writeback and resolve without waiting for it. */
  async?: boolean;
}

export interface Residency {
  /** Pages spanned by the region (the enclosing pages of an unaligned range). */
  pages: number;
  /** How many of them are in memory. */
  resident: number;
  /** One byte per page: 1 resident, 0 not. */
  map: Uint8Array;
}

/** @internal What mapping needs from a device. */
export interface MapSource {
  fd: number;
  path: string;
  size: number;
  readOnly: boolean;
}

const ADVICE: readonly Advice[] = ['normal', 'random', 'sequential', 'willneed', 'dontneed', 'hugepage'];

/** @internal Validates options and maps; BlockDevice.map() calls this. */
export function mapDevice(src: MapSource, options: MapOptions | undefined): MappedRegion {
  const o = checkOptions(options, 'options', ['offset', 'length', 'mode', 'readOnly']);
  const mode = o.mode ?? 'shared';
  if (mode !== 'shared' && mode !== 'private') {
    throw typeError('ERR_INVALID_ARG_VALUE', `options.mode must be 'shared' or 'private', got ${String(mode)}`);
  }
  // A private mapping never writes the file, so it may be writable over a read-only device.
  const readOnly = o.readOnly === undefined ? src.readOnly && mode === 'shared' : checkBool(o.readOnly, 'options.readOnly');
  if (!readOnly && mode === 'shared' && src.readOnly) {
    throw new BlockringError('ERR_READ_ONLY', `device '${src.path}' is open read-only: map it readOnly or 'private'`);
  }
  const offset = o.offset === undefined ? 0 : checkUint(o.offset, 'options.offset');
  const size = src.size;
  const length = o.length === undefined ? size - offset : checkUint(o.length, 'options.length');
  // Touching a mapped page past the end of the file raises SIGBUS, which
  // zero-copy access through region.buffer cannot catch.
  if (offset > size || length <= 0 || offset + length > size) {
    throw rangeError('ERR_OUT_OF_RANGE',
      `cannot map ${length} bytes at offset ${offset} of '${src.path}' (${size} bytes): the range must be non-empty and inside the device`);
  }
  // BLOCKRING_NO_EXTERNAL_BUFFERS=1 makes the addon behave as where V8
  // forbids external memory (Electron's memory cage), to test that path.
  const external = process.env.BLOCKRING_NO_EXTERNAL_BUFFERS !== '1';
  let h: MappedRegionHandle;
  try {
    h = new native.MappedRegion(src.fd, offset, length, mode === 'private', readOnly, external);
  } catch (e) {
    throw fromNative(e, src.path);
  }
  return new MappedRegion(h, src.path, offset, length, mode, readOnly);
}

/**
 * A memory-mapped range of a device. `buffer` views the mapping without
 * copying; `read`/`write` copy through native code and turn a fault (the file
 * was truncated under the mapping) into an EIO error. The mapping outlives
 * the device's close; `unmap()` releases it (the GC does too, once neither
 * the region nor its buffer is reachable).
 */
export class MappedRegion {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
  readonly mode: MapMode;
  readonly readOnly: boolean;
  readonly #h: MappedRegionHandle;
  #buffer: Buffer | null = null;

  /** @internal */
  constructor(h: MappedRegionHandle, path: string, offset: number, length: number, mode: MapMode, readOnly: boolean) {
    this.#h = h;
    this.path = path;
    this.offset = offset;
    this.length = length;
    this.mode = mode;
    this.readOnly = readOnly;
  }

  get unmapped(): boolean {
    return this.#h.unmapped;
  }

  /**
   * The mapped bytes as a Buffer, without a copy. Throws ERR_EXTERNAL_BUFFERS_DISALLOWED
   * where the runtime forbids external memory (use read/write there). Detached by unmap():
   * its length becomes 0 and typed-array methods on it throw TypeError. Writing into the
   * buffer of a readOnly region, or touching it after another process truncated the file,
   * kills the process (SIGSEGV/SIGBUS), as in C. A region longer than buffer.constants.MAX_LENGTH
   * has no buffer (RangeError ERR_OUT_OF_RANGE).
   */
  get buffer(): Buffer {
    this.#checkMapped();
    if (this.length > bufferConstants.MAX_LENGTH) {
      throw rangeError('ERR_OUT_OF_RANGE',
        `a region of ${this.length} bytes is larger than the largest Buffer (buffer.constants.MAX_LENGTH, ${bufferConstants.MAX_LENGTH}): map a smaller range, or use read()/write()`);
    }
    if (!this.#buffer) this.#buffer = Buffer.from(this.#call(() => this.#h.arrayBuffer()));
    return this.#buffer;
  }

  /** Copies region bytes [offset, offset + target.byteLength) into target. Returns the bytes copied. */
  read(target: ArrayBufferView, offset: number | bigint = 0): number {
    checkView(target, 'target');
    return this.#call(() => this.#h.read(target, this.#range(offset, target.byteLength)));
  }

  /** Copies source into the region at offset. Returns the bytes copied. */
  write(source: ArrayBufferView, offset: number | bigint = 0): number {
    checkView(source, 'source');
    if (this.readOnly) throw new BlockringError('ERR_READ_ONLY', 'region is mapped read-only');
    return this.#call(() => this.#h.write(source, this.#range(offset, source.byteLength)));
  }

  /** msync: resolves when written pages have reached the device (with `async`, once writeback is scheduled). */
  sync(options?: SyncOptions): Promise<void> {
    try {
      const async = checkBool(checkOptions(options, 'options', ['async']).async, 'options.async');
      this.#checkMapped();
      return this.#h.sync(async).catch((e: unknown) => {
        throw fromNative(e, this.path);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * madvise over the region's pages. 'dontneed' drops them from this mapping (a private
   * mapping loses its private changes and reads the file again).
   */
  advise(advice: Advice): void {
    if (typeof advice !== 'string' || !ADVICE.includes(advice)) {
      throw typeError('ERR_INVALID_ARG_VALUE', `advice must be one of ${ADVICE.join(', ')}, got ${String(advice)}`);
    }
    this.#checkMapped();
    this.#call(() => this.#h.advise(advice));
  }

  /** mlock: faults the pages in and keeps them in memory (subject to RLIMIT_MEMLOCK). */
  lock(): void {
    this.#checkMapped();
    this.#call(() => this.#h.lock());
  }

  unlock(): void {
    this.#checkMapped();
    this.#call(() => this.#h.unlock());
  }

  /** mincore: which of the region's pages are in memory. */
  residency(): Residency {
    this.#checkMapped();
    const map = this.#call(() => this.#h.residency());
    let resident = 0;
    for (const b of map) resident += b;
    return { pages: map.length, resident, map };
  }

  /** `await using region = dev.map()`: unmap() at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    this.unmap();
    return Promise.resolve();
  }

  /**
   * Unmaps; every buffer handed out is detached first. Requests in flight on
   * the region's memory keep the pages mapped until they complete. Idempotent.
   */
  unmap(): void {
    // Requests already made on the region's memory go to the engine first,
    // which holds the pages until they complete.
    if (!this.#h.unmapped) submitQueuedRequests();
    this.#buffer = null;
    this.#h.unmap();
  }

  #checkMapped(): void {
    if (this.#h.unmapped) throw new BlockringError('ERR_REGION_UNMAPPED', `region of '${this.path}' is unmapped`);
  }

  #range(offset: number | bigint, length: number): number {
    const off = checkUint(offset, 'offset');
    if (off + length > this.length) {
      throw rangeError('ERR_OUT_OF_RANGE', `${length} bytes at offset ${off} exceed the region (${this.length} bytes)`);
    }
    this.#checkMapped();
    return off;
  }

  #call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw fromNative(e, this.path);
    }
  }
}
