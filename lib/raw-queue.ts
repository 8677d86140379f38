import { BlockDevice } from './block-device';
import type { RingHandle } from './native';
import { opWord, SQ_BUFCOUNT, SQ_BUFFER, SQ_BUFOFFSET, SQ_DEVICE, SQ_ID, SQ_LENGTH, SQ_OFFSET, SQ_OPWORD, SQ_STRIDE } from './records';
import { checkBool, checkOptions, checkUint, checkViews, rangeError, typeError } from './validate';

// A record field: any number goes into the Float64Array (the native side
// checks values at submit); anything else would throw an uncoded TypeError there.
function num(v: unknown, name: string): number {
  if (typeof v !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a number, got ${typeof v}`);
  return v;
}

/**
 * The low-level interface: requests are records in a preallocated
 * Float64Array, buffers are referenced by index into a registered table, and
 * completions arrive as (id, result) records in another Float64Array, one
 * callback per batch. Nothing is allocated per request on the JS side.
 *
 * Submission record (8 doubles, at sq[slot * 8]):
 *   id, op | tag << 8 | flags << 16, device handle, buffer index, 1,
 *   length, device offset, offset inside the buffer
 * Completion record (4 doubles, at cq[i * 4]):
 *   id, result (bytes, or -errno), issue sequence, completion sequence
 */
export class RawQueue {
  /** Submission records; write `capacity` at most, then call submit(count). */
  readonly sq: Float64Array;
  /** Completion records of the current callback. */
  readonly cq: Float64Array;
  /** Called once per batch of completions: cq holds `count` records. */
  onComplete: ((cq: Float64Array, count: number) => void) | null = null;
  readonly #h: RingHandle;

  /** @internal */
  constructor(h: RingHandle, sq: Float64Array, cq: Float64Array) {
    this.#h = h;
    this.sq = sq;
    this.cq = cq;
  }

  get capacity(): number {
    return this.sq.length / SQ_STRIDE;
  }

  /**
   * Replaces the registered buffer table. The ring pins these buffers until
   * the next call. With `fixed` (default true) the io_uring engine also
   * registers them with the kernel (READ_FIXED / WRITE_FIXED). Returns
   * whether kernel registration took effect. Throws while raw requests are
   * in flight.
   */
  registerBuffers(buffers: ArrayBufferView[], options: { fixed?: boolean } = {}): boolean {
    // checkViews copies the array: the ring pins the views through its own
    // copy, whatever the caller later does with theirs.
    const views = checkViews(buffers, 'buffers');
    const o = checkOptions(options, 'options', ['fixed']);
    const fixed = o.fixed === undefined ? true : checkBool(o.fixed, 'options.fixed');
    return this.#h.registerBuffers(views, fixed);
  }

  /** Writes one submission record (a convenience; writing `sq` directly is equivalent). */
  prepare(slot: number, id: number, op: number, dev: BlockDevice | number, bufIndex: number,
    bufOffset: number, length: number, offset: number, tag = 0, flags = 0): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.capacity) {
      throw rangeError('ERR_OUT_OF_RANGE', `slot must be an integer from 0 to ${this.capacity - 1}, got ${String(slot)}`);
    }
    let handle: number;
    if (typeof dev === 'number') handle = dev;
    else if (dev instanceof BlockDevice) handle = dev.handle;
    else throw typeError('ERR_INVALID_ARG_TYPE', 'dev must be a BlockDevice or a device handle');
    // Small codes: they share one double (see opWord); the native side checks each.
    const t = num(tag, 'tag'), f = num(flags, 'flags'), o = num(op, 'op');
    if (!(Number.isInteger(o) && Number.isInteger(t) && Number.isInteger(f) && o >= 0 && o < 256 && t >= 0 && t < 256 && f >= 0 && f < 65536)) {
      throw rangeError('ERR_OUT_OF_RANGE', `op, tag or flags out of range (${o}, ${t}, ${f})`);
    }
    const b = slot * SQ_STRIDE;
    const sq = this.sq;
    sq[b + SQ_ID] = num(id, 'id');
    sq[b + SQ_OPWORD] = opWord(o, t, f);
    sq[b + SQ_DEVICE] = handle;
    sq[b + SQ_BUFFER] = num(bufIndex, 'bufIndex');
    sq[b + SQ_BUFCOUNT] = 1;
    sq[b + SQ_LENGTH] = num(length, 'length');
    sq[b + SQ_OFFSET] = num(offset, 'offset');
    sq[b + SQ_BUFOFFSET] = num(bufOffset, 'bufOffset');
  }

  /** Submits records 0..count-1 in one call. Throws (submitting none) on a bad record. */
  submit(count: number): void {
    const n = checkUint(count, 'count');
    if (n > this.capacity) throw rangeError('ERR_OUT_OF_RANGE', `count must be at most ${this.capacity}, got ${n}`);
    this.#h.submitRaw(n);
  }

  /**
   * Delivers the completions the kernel has already posted (page-cache reads
   * a submit finished inside the syscall, say) now, instead of on the event
   * loop's next wakeup, and returns how many it delivered (raw and Promise
   * ones). Re-entrant by design: `onComplete` runs inside this call, once per
   * batch, so call it where that code may run (after the caller's own state
   * is consistent); the Promise requests among them settle as usual (their
   * reactions run as microtasks after the caller's code). Inside a completion
   * callback (and the Promise reactions that run at its end, such as code
   * after an `await dev.read(...)`) it does nothing and returns 0: what the
   * callback submits is only staged until it returns, and the ring reaps
   * again then. An exception a callback throws is an uncaught
   * exception, as on a wakeup; it does not propagate out of reap().
   */
  reap(): number {
    return this.#h.reap();
  }

  /** @internal */
  _deliver(count: number): void {
    this.onComplete?.(this.cq, count);
  }
}
