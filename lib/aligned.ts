import { constants as bufferConstants } from 'node:buffer';

import type { BlockDevice } from './block-device';
import { native } from './native';
import { checkOptions, checkUint, rangeError, typeError } from './validate';

function checkAlignment(v: unknown, name: string): number {
  const align = checkUint(v, name);
  if (align < 1 || (align & (align - 1)) !== 0 || align > 1 << 30) {
    throw rangeError('ERR_OUT_OF_RANGE', `${name} must be a power of two up to 2^30, got ${align}`);
  }
  return align;
}

/**
 * A Buffer of `size` bytes whose data address is a multiple of `alignment`
 * (a power of two; default: the device's memory alignment when a device is
 * given, else 4096), as O_DIRECT needs.
 *
 * Where the runtime forbids external ArrayBuffers (Electron's V8 memory
 * cage), the memory is V8-owned: a slightly larger ArrayBuffer and an aligned
 * view of it. Setting BLOCKRING_NO_EXTERNAL_BUFFERS=1 takes that path
 * everywhere (it is how the tests exercise it).
 */
export function allocAligned(size: number, alignment?: number | BlockDevice): Buffer {
  const n = checkUint(size, 'size');
  if (n > bufferConstants.MAX_LENGTH) {
    throw rangeError('ERR_OUT_OF_RANGE', `size must be at most buffer.constants.MAX_LENGTH (${bufferConstants.MAX_LENGTH}), got ${n}`);
  }
  let align = 4096;
  if (typeof alignment === 'number' || typeof alignment === 'bigint') {
    align = checkAlignment(alignment, 'alignment');
  } else if (alignment !== undefined) {
    if (typeof alignment !== 'object' || alignment === null || typeof alignment.memoryAlignment !== 'number') {
      throw typeError('ERR_INVALID_ARG_TYPE', 'alignment must be a number or a BlockDevice');
    }
    align = Math.max(alignment.memoryAlignment, alignment.logicalBlockSize);
  }
  // ENOMEM: a BlockIoError.
  const r = native.allocAligned(n, align, process.env.BLOCKRING_NO_EXTERNAL_BUFFERS === '1');
  if ('buffer' in r) return r.buffer;
  return Buffer.from(r.arrayBuffer, r.offset, n);
}

/** The largest power of two (up to 1 MiB) dividing a view's data address. */
export function addressAlignment(view: ArrayBufferView): number {
  if (!ArrayBuffer.isView(view) || view instanceof DataView) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'view must be a Buffer or TypedArray');
  }
  return native.addressAlignment(view);
}

/**
 * `count` aligned buffers of `size` bytes carved from one allocation, for
 * reuse across requests. Register it with `ring.registerPool(pool)` to let the
 * io_uring engine use fixed buffers (READ_FIXED / WRITE_FIXED) for requests
 * whose buffer lies in the pool.
 */
export class BufferPool {
  readonly size: number;
  readonly count: number;
  readonly alignment: number;
  /** Every buffer of the pool, in order. */
  readonly buffers: readonly Buffer[];
  readonly #free: Buffer[];
  readonly #busy = new Set<Buffer>();

  constructor(count: number, size: number, options: { alignment?: number } = {}) {
    this.count = checkUint(count, 'count');
    this.size = checkUint(size, 'size');
    if (this.count < 1 || this.size < 1) throw rangeError('ERR_OUT_OF_RANGE', 'count and size must be at least 1');
    const o = checkOptions(options, 'options', ['alignment']);
    this.alignment = o.alignment === undefined ? 4096 : checkAlignment(o.alignment, 'options.alignment');
    // Each buffer starts aligned: round the stride up to the alignment.
    const stride = Math.ceil(this.size / this.alignment) * this.alignment;
    if (stride * this.count > bufferConstants.MAX_LENGTH) {
      throw rangeError('ERR_OUT_OF_RANGE', `a pool of ${this.count} × ${stride} bytes exceeds buffer.constants.MAX_LENGTH`);
    }
    const slab = allocAligned(stride * this.count, this.alignment);
    const bufs: Buffer[] = [];
    for (let i = 0; i < this.count; i++) bufs.push(slab.subarray(i * stride, i * stride + this.size));
    this.buffers = Object.freeze(bufs);
    this.#free = bufs.slice().reverse();
  }

  /** Buffers not acquired. */
  get available(): number {
    return this.#free.length;
  }

  /** A free buffer, or null when all are in use. */
  acquire(): Buffer | null {
    const b = this.#free.pop() ?? null;
    if (b) this.#busy.add(b);
    return b;
  }

  release(buffer: Buffer): void {
    if (!this.#busy.delete(buffer)) throw typeError('ERR_INVALID_ARG_VALUE', 'buffer is not an acquired buffer of this pool');
    this.#free.push(buffer);
  }
}
