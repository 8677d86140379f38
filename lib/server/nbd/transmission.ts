// Transmission phase: runs checked requests on the device and encodes the
// replies (simple, or structured chunks with error chunks). Requests run
// concurrently on the ring; replies go out in completion order, matched by
// cookie.
import type { BlockDevice, Extent } from '../../block-device';
import type { Qcow2Device } from '../../format/qcow2';
import { HEADROOM, type PayloadPool } from './buffers';
import { putU64 } from './handshake';
import type { ReplyWriter } from './output';
import * as P from './protocol';
import { errnoName, type RawConsumer, type RawPath } from './raw';
import type { Request } from './request';

/** Anything ring.open() returns: a raw file or block device, or a qcow2 image. */
export type NbdDevice = BlockDevice | Qcow2Device;

const ORDERED = { tag: 'ordered' } as const;
const FUA = { fua: true } as const;
const UNMAP = { unmap: true } as const;
const KEEP = { unmap: false } as const;
/** BLOCK_STATUS answers at most this many extents (the client asks again for the rest). */
const MAX_EXTENTS = 2048;
const CACHE_CHUNK = 1 << 20;
/** READ replies up to this size are copied into the reply slab (one socket write per wakeup); larger ones go out as their own buffer. */
const COPY_MAX = 16 << 10;

export class Transmission implements RawConsumer {
  readonly #dev: NbdDevice;
  readonly #out: ReplyWriter;
  readonly #pool: PayloadPool;
  readonly #raw: RawPath | null;
  readonly #structured: boolean;
  /** Called once per request when its reply is queued (or dropped). */
  readonly #finished: (r: Request) => void;
  dead = false;

  constructor(dev: NbdDevice, out: ReplyWriter, pool: PayloadPool, raw: RawPath | null, structured: boolean, finished: (r: Request) => void) {
    this.#dev = dev;
    this.#out = out;
    this.#pool = pool;
    this.#raw = raw;
    this.#structured = structured;
    this.#finished = finished;
  }

  /** Binds a pooled request's completion callbacks (once per Request object). */
  bind(r: Request): void {
    r.onDone = (n) => this.#done(r, n);
    r.onFail = (e) => this.#fail(r, e);
  }

  /** Starts a checked request (WRITE with its payload complete). */
  run(r: Request): void {
    const d = this.#dev;
    switch (r.type) {
      case P.CMD_READ: {
        const pb = this.#raw?.get(r.length) ?? this.#pool.get(r.length);
        r.payload = pb;
        if (pb.index >= 0) return this.#raw!.queue(r, false, false, this);
        d.read(pb.data(r.length), r.offset).then(r.onDone, r.onFail);
        return;
      }
      case P.CMD_WRITE: {
        const pb = r.payload!;
        if (pb.index >= 0) return this.#raw!.queue(r, true, (r.flags & P.CMD_FLAG_FUA) !== 0, this);
        d.write(pb.data(r.length), r.offset, r.flags & P.CMD_FLAG_FUA ? FUA : undefined).then(r.onDone, r.onFail);
        return;
      }
      case P.CMD_FLUSH:
        // ORDERED: it covers every write completed before it, on every
        // connection, as they share the device. Raw records still queued
        // are submitted first (they are not completed, so the flush need
        // not cover them, but they stay in arrival order).
        this.#raw?.submit();
        d.flush(ORDERED).then(r.onDone, r.onFail);
        return;
      case P.CMD_TRIM:
        this.#trim(r).then(r.onDone, r.onFail);
        return;
      case P.CMD_WRITE_ZEROES:
        // BLKZEROOUT may write every block: not fast, so say so at once.
        if (r.flags & P.CMD_FLAG_FAST_ZERO && d.isBlockDevice) return this.reply(r, P.ENOTSUP, 'zeroing a block device is not fast');
        this.#writeZeroes(r).then(r.onDone, r.onFail);
        return;
      case P.CMD_CACHE:
        this.#cache(r).then(r.onDone, r.onFail);
        return;
      case P.CMD_BLOCK_STATUS:
        d.allocation(r.offset, r.length).then(r.onDone, r.onFail);
        return;
      default:
        this.reply(r, P.EINVAL);
    }
  }

  /** Replies with `error` (0: success without data) and finishes the request. */
  reply(r: Request, error: number, message = ''): void {
    if (!this.dead) {
      if (error === 0) this.#success(r);
      else if (this.#structured) this.#errorChunk(r, error, message);
      else this.#simple(r, error);
    }
    this.#end(r);
  }

  #done(r: Request, n: unknown): void {
    if (r.type === P.CMD_READ) return this.#readDone(r, n as number);
    if (r.type === P.CMD_BLOCK_STATUS) return this.#blockStatus(r, n as Extent[]);
    this.reply(r, 0);
  }

  /** A raw READ or WRITE completed: `result` is bytes or -errno. */
  rawDone(r: Request, result: number): void {
    if (result < 0) return this.reply(r, errorFor(errnoName(result)), `${r.type === P.CMD_READ ? 'read' : 'write'} failed: ${errnoName(result) ?? result}`);
    if (r.type === P.CMD_WRITE) {
      // A short write left part of the payload unwritten: never acknowledged.
      return this.reply(r, result === r.length ? 0 : P.EIO, result === r.length ? '' : 'short write');
    }
    if (this.dead) return this.#end(r);
    if (r.length > COPY_MAX) return this.#readDone(r, result);
    const pb = r.payload!;
    if (result < r.length) pb.data(r.length).fill(0, result);
    const hdr = this.#structured ? 28 : 16;
    const b = this.#out.reserve(hdr + r.length);
    const at = this.#out.at;
    if (this.#structured) {
      chunkHeader(b, at, P.REPLY_FLAG_DONE, P.REPLY_TYPE_OFFSET_DATA, r, 8 + r.length);
      putU64(b, at + 20, r.offset);
    } else simpleHeader(b, at, 0, r);
    b.set(pb.data(r.length), at + hdr); // TypedArray#set: a memmove, no binding call
    this.#end(r);
  }

  #fail(r: Request, e: unknown): void {
    const err = e as { code?: string; message?: string };
    this.reply(r, errorFor(err.code), String(err.message ?? e).slice(0, 200));
  }

  #end(r: Request): void {
    if (r.payload) {
      r.payload.release();
      r.payload = null;
    }
    this.#finished(r);
  }

  #readDone(r: Request, n: number): void {
    const pb = r.payload!;
    if (this.dead) return this.#end(r);
    // A read within the export is short only if the file shrank under us.
    if (n < r.length) pb.data(r.length).fill(0, n);
    const b = pb.buf;
    let at: number;
    let hdr: number;
    if (this.#structured) {
      hdr = 28;
      at = HEADROOM - hdr;
      chunkHeader(b, at, P.REPLY_FLAG_DONE, P.REPLY_TYPE_OFFSET_DATA, r, 8 + r.length);
      putU64(b, at + 20, r.offset);
    } else {
      hdr = 16;
      at = HEADROOM - hdr;
      simpleHeader(b, at, 0, r);
    }
    // The socket owns the buffer until written; then it returns to the pool.
    r.payload = null;
    this.#out.data(pb.wire(hdr, r.length), pb.release);
    this.#finished(r);
  }

  #blockStatus(r: Request, extents: Extent[]): void {
    if (this.dead) return this.#end(r);
    const max = r.flags & P.CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
    // Merge neighbours with the same status (data and backing both read as data).
    const lens: number[] = [];
    const states: number[] = [];
    for (const e of extents) {
      const s = e.type === 'hole' ? P.STATE_HOLE | P.STATE_ZERO : e.type === 'zero' ? P.STATE_ZERO : 0;
      const last = states.length - 1;
      if (last >= 0 && states[last] === s) lens[last] = (lens[last] as number) + e.length;
      else if (lens.length < max) {
        lens.push(e.length);
        states.push(s);
      } else break;
    }
    if (lens.length === 0) return this.reply(r, P.EINVAL, 'no extents');
    const len = 4 + 8 * lens.length;
    const b = this.#out.reserve(20 + len);
    const at = this.#out.at;
    chunkHeader(b, at, P.REPLY_FLAG_DONE, P.REPLY_TYPE_BLOCK_STATUS, r, len);
    b.writeUInt32BE(P.CONTEXT_BASE_ALLOCATION, at + 20);
    for (let i = 0; i < lens.length; i++) {
      b.writeUInt32BE(lens[i] as number, at + 24 + 8 * i);
      b.writeUInt32BE(states[i] as number, at + 28 + 8 * i);
    }
    this.#end(r);
  }

  async #trim(r: Request): Promise<void> {
    // Block devices discard whole logical blocks: trim is advisory, so the
    // unaligned edges are simply kept.
    const d = this.#dev;
    const bs = d.isBlockDevice ? d.logicalBlockSize : 1;
    const start = Math.ceil(r.offset / bs) * bs;
    const end = Math.floor((r.offset + r.length) / bs) * bs;
    if (end > start) await d.discard(start, end - start);
    if (r.flags & P.CMD_FLAG_FUA) await d.flush();
  }

  async #writeZeroes(r: Request): Promise<void> {
    const d = this.#dev;
    await d.writeZeroes(r.offset, r.length, r.flags & P.CMD_FLAG_NO_HOLE ? KEEP : UNMAP);
    if (r.flags & P.CMD_FLAG_FUA) await d.flush();
  }

  async #cache(r: Request): Promise<void> {
    // Reading the range pulls it into the page cache (or qcow2's metadata cache).
    const pb = this.#pool.get(Math.min(r.length, CACHE_CHUNK));
    try {
      for (let off = r.offset; off < r.offset + r.length; off += CACHE_CHUNK) {
        const n = Math.min(CACHE_CHUNK, r.offset + r.length - off);
        await this.#dev.read(pb.data(n), off);
      }
    } finally {
      pb.release();
    }
  }

  #success(r: Request): void {
    const b = this.#out.reserve(16);
    simpleHeader(b, this.#out.at, 0, r);
  }

  #simple(r: Request, error: number): void {
    const b = this.#out.reserve(16);
    simpleHeader(b, this.#out.at, error, r);
  }

  #errorChunk(r: Request, error: number, message: string): void {
    const msg = Buffer.from(message);
    const b = this.#out.reserve(26 + msg.length);
    const at = this.#out.at;
    chunkHeader(b, at, P.REPLY_FLAG_DONE, P.REPLY_TYPE_ERROR, r, 6 + msg.length);
    b.writeUInt32BE(error, at + 20);
    b.writeUInt16BE(msg.length, at + 24);
    msg.copy(b, at + 26);
  }
}

function simpleHeader(b: Buffer, at: number, error: number, r: Request): void {
  b.writeUInt32BE(P.SIMPLE_REPLY_MAGIC, at);
  b.writeUInt32BE(error, at + 4);
  b.writeUInt32BE(r.cookieHi, at + 8);
  b.writeUInt32BE(r.cookieLo, at + 12);
}

function chunkHeader(b: Buffer, at: number, flags: number, type: number, r: Request, length: number): void {
  b.writeUInt32BE(P.STRUCTURED_REPLY_MAGIC, at);
  b.writeUInt16BE(flags, at + 4);
  b.writeUInt16BE(type, at + 6);
  b.writeUInt32BE(r.cookieHi, at + 8);
  b.writeUInt32BE(r.cookieLo, at + 12);
  b.writeUInt32BE(length, at + 16);
}

/** The NBD error for a blockring error code (proto.md "Error values"). */
export function errorFor(code: string | undefined): number {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return P.ENOSPC;
    case 'EPERM':
    case 'EROFS':
    case 'EACCES':
    case 'ERR_READ_ONLY':
      return P.EPERM;
    case 'EINVAL':
    case 'ERR_MISALIGNED':
    case 'ERR_OUT_OF_RANGE':
      return P.EINVAL;
    case 'ENOMEM':
      return P.ENOMEM;
    case 'ERR_DEVICE_CLOSED':
    case 'ERR_RING_CLOSED':
    case 'ESHUTDOWN':
      return P.ESHUTDOWN;
    default:
      return P.EIO;
  }
}
