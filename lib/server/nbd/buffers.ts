// Payload buffers for READ and WRITE, pooled by power-of-two size class so
// the request path allocates nothing in steady state. Each buffer has
// HEADROOM bytes before its data: a READ reply's header is written just in
// front of the data and both go out as one buffer, while the data itself
// stays aligned for O_DIRECT.
import { allocAligned } from '../../aligned';

export const HEADROOM = 4096;
const MIN_CLASS = 12; // 4 KiB
/** Bytes of free buffers kept per size class (≥ 64 buffers): 4 KiB requests at depth 32 on many connections reuse theirs. */
const KEEP_BYTES_PER_CLASS = 8 << 20;
const keepFor = (c: number): number => Math.max(64, Math.floor(KEEP_BYTES_PER_CLASS / (HEADROOM + 2 ** c)));

export class PayloadBuffer {
  readonly buf: Buffer;
  readonly sizeClass: number;
  /** Its index in the raw path's registered table (-1: a pool buffer). */
  readonly index: number;
  #view: Buffer | null = null;
  #viewLen = -1;
  #wire: Buffer | null = null;
  #wireHdr = -1;
  #wireLen = -1;
  /** Returns the buffer to its pool; bound once, usable as a write callback. */
  readonly release: () => void;

  constructor(pool: { put(b: PayloadBuffer): void }, sizeClass: number, alignment: number, index = -1) {
    this.sizeClass = sizeClass;
    this.index = index;
    this.buf = allocAligned(HEADROOM + 2 ** sizeClass, Math.max(alignment, 4096));
    this.release = () => pool.put(this);
  }

  /** The first `len` data bytes (cached: the same length costs no allocation). */
  data(len: number): Buffer {
    if (this.#viewLen !== len) {
      this.#view = this.buf.subarray(HEADROOM, HEADROOM + len);
      this.#viewLen = len;
    }
    return this.#view as Buffer;
  }

  /** `hdr` header bytes before the data and `len` data bytes, as one buffer. */
  wire(hdr: number, len: number): Buffer {
    if (this.#wireHdr !== hdr || this.#wireLen !== len) {
      this.#wire = this.buf.subarray(HEADROOM - hdr, HEADROOM + len);
      this.#wireHdr = hdr;
      this.#wireLen = len;
    }
    return this.#wire as Buffer;
  }
}

export class PayloadPool {
  readonly #free: PayloadBuffer[][] = [];
  readonly #alignment: number;
  /** Buffers handed out and not yet released (a leak check for tests). */
  outstanding = 0;

  constructor(alignment: number) {
    this.#alignment = alignment;
  }

  get(len: number): PayloadBuffer {
    let c = MIN_CLASS;
    while (2 ** c < len) c++;
    this.outstanding++;
    const list = this.#free[c];
    const b = list?.pop();
    return b ?? new PayloadBuffer(this, c, this.#alignment);
  }

  put(b: PayloadBuffer): void {
    this.outstanding--;
    const list = (this.#free[b.sizeClass] ??= []);
    // Keep small buffers for reuse; large ones go back to the GC.
    if (list.length < keepFor(b.sizeClass) && b.sizeClass <= 20) list.push(b);
  }
}
