// READ and WRITE through the ring's raw interface (ring.raw): one record
// per request written into the shared submission array, every record a
// connection's socket read produced submitted in one call, what the kernel
// completed inside that call reaped at once, and every completion of a
// wakeup delivered in one callback. No Promise and no
// per-request buffer pinning: the payload buffers are a fixed table of
// slots registered with the ring once. Requests that find no free slot (or
// are larger than a slot) take the Promise path (dev.read / dev.write).
import os from 'node:os';

import type { BlockDevice } from '../../block-device';
import { FLAG, OP, opWord, SQ_BUFCOUNT, SQ_BUFFER, SQ_BUFOFFSET, SQ_DEVICE, SQ_ID, SQ_LENGTH, SQ_OFFSET, SQ_OPWORD, SQ_STRIDE, TAG } from '../../records';
import type { RawQueue } from '../../raw-queue';
import type { Ring } from '../../ring';
import { HEADROOM, PayloadBuffer } from './buffers';
import type { Request } from './request';

// Linux's value; Node's errno table lacks it.
const ESHUTDOWN = (os.constants.errno as Record<string, number | undefined>).ESHUTDOWN ?? 108;

/** Largest request served through a slot. */
export const RAW_MAX = 64 << 10;
/** Slots (requests in flight through the raw path, all connections together). */
const SLOTS = 256;

/** Who finishes a raw request: its connection's transmission. */
export interface RawConsumer {
  rawDone(r: Request, result: number): void;
}

export class RawPath {
  readonly #raw: RawQueue;
  readonly #dev: BlockDevice;
  readonly #handle: number;
  readonly #slots: PayloadBuffer[] = [];
  readonly #free: PayloadBuffer[] = [];
  readonly #req: (Request | null)[] = new Array<Request | null>(SLOTS).fill(null);
  readonly #by: (RawConsumer | null)[] = new Array<RawConsumer | null>(SLOTS).fill(null);
  readonly #put = (b: PayloadBuffer): void => void this.#free.push(b);
  #queued = 0;
  inflight = 0;

  /** Takes ring.raw (its onComplete and registered buffer table) for `dev`. */
  constructor(ring: Ring, dev: BlockDevice) {
    this.#raw = ring.raw;
    this.#dev = dev;
    this.#handle = dev.handle;
    const align = Math.max(dev.memoryAlignment, 4096);
    for (let i = 0; i < SLOTS; i++) {
      const b = new PayloadBuffer({ put: this.#put }, 16, align, i);
      this.#slots.push(b);
    }
    // Not fixed: kernel registration would pin every slot's pages for the
    // server's lifetime; the records still name their buffer by index.
    this.#raw.registerBuffers(this.#slots.map((b) => b.buf), { fixed: false });
    for (let i = SLOTS - 1; i >= 0; i--) this.#free.push(this.#slots[i] as PayloadBuffer);
    this.#raw.onComplete = this.#complete;
  }

  /** Slots handed out and not yet back (0 when idle). */
  get outstanding(): number {
    return SLOTS - this.#free.length;
  }

  /** A free slot for `len` bytes, or null (the caller takes the Promise path). */
  get(len: number): PayloadBuffer | null {
    if (len > RAW_MAX) return null;
    return this.#free.pop() ?? null;
  }

  /** Queues r (its payload a slot) as a raw read or write; submitted by submit(). */
  queue(r: Request, write: boolean, fua: boolean, by: RawConsumer): void {
    const pb = r.payload as PayloadBuffer;
    const i = pb.index;
    this.#req[i] = r;
    this.#by[i] = by;
    if (this.#queued === this.#raw.capacity) this.submit();
    const sq = this.#raw.sq;
    const b = this.#queued * SQ_STRIDE;
    sq[b + SQ_ID] = i;
    sq[b + SQ_OPWORD] = opWord(write ? OP.write : OP.read, TAG.simple, fua ? FLAG.fua : 0);
    sq[b + SQ_DEVICE] = this.#handle;
    sq[b + SQ_BUFFER] = i;
    sq[b + SQ_BUFCOUNT] = 1;
    sq[b + SQ_LENGTH] = r.length;
    sq[b + SQ_OFFSET] = r.offset;
    sq[b + SQ_BUFOFFSET] = HEADROOM;
    this.#queued++;
    this.inflight++;
  }

  /** Submits every queued record in one call; true when records went to the kernel. */
  submit(): boolean {
    const n = this.#queued;
    if (n === 0) return false;
    this.#queued = 0;
    // A record names its device by handle, which the ring may give to a
    // device opened later: a closed device's requests never reach it.
    if (this.#dev.closed) {
      const sq = this.#raw.sq;
      for (let k = 0; k < n; k++) this.#finish(sq[k * SQ_STRIDE + SQ_ID] as number, -ESHUTDOWN);
      return false;
    }
    try {
      this.#raw.submit(n);
    } catch {
      // The ring refused the batch (closed, say): nothing was submitted, so
      // each request fails now; its buffer was never handed to the kernel.
      const sq = this.#raw.sq;
      for (let k = 0; k < n; k++) this.#finish(sq[k * SQ_STRIDE + SQ_ID] as number, -os.constants.errno.EIO);
      return false;
    }
    return true;
  }

  /**
   * Finishes, now, the requests the kernel already completed (page-cache
   * reads and writes usually complete inside the submit): their consumers'
   * rawDone runs inside this call, and their replies leave in this turn
   * rather than after a trip through the event loop.
   */
  reap(): void {
    this.#raw.reap();
  }

  /** Gives ring.raw back (nothing may be in flight); the slot table stays registered until the next registerBuffers. */
  release(): void {
    if (this.#raw.onComplete === this.#complete) this.#raw.onComplete = null;
  }

  readonly #complete = (cq: Float64Array, count: number): void => {
    for (let k = 0; k < count; k++) this.#finish(cq[k * 4] as number, cq[k * 4 + 1] as number);
  };

  #finish(i: number, result: number): void {
    const r = this.#req[i] as Request;
    const by = this.#by[i] as RawConsumer;
    this.#req[i] = null;
    this.#by[i] = null;
    this.inflight--;
    by.rawDone(r, result);
  }
}

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));

/** The errno name of a raw completion's -errno result. */
export function errnoName(result: number): string | undefined {
  return -result === ESHUTDOWN ? 'ESHUTDOWN' : errnoNames.get(-result);
}
