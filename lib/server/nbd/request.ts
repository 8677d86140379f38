// Transmission requests: the 28-byte header parsed into a reusable
// Request, and every client-supplied field checked against the export
// before anything reaches the device (proto.md "Request message" and
// "Error values").
import type { PayloadBuffer } from './buffers';
import type { ExportInfo } from './handshake';
import * as P from './protocol';

export const HEADER_SIZE = 28;

/** One request in flight; pooled per connection, so fields are reset on parse. */
export class Request {
  cookieHi = 0;
  cookieLo = 0;
  flags = 0;
  type = 0;
  offset = 0;
  length = 0;
  /** READ/WRITE data (WRITE: filled from the socket before the request runs). */
  payload: PayloadBuffer | null = null;
  /** Payload bytes this request counts against the connection's in-flight limit. */
  counted = 0;
  /** Bound once by the connection: the request's completion callbacks. */
  onDone: (n: unknown) => void = () => undefined;
  onFail: (e: unknown) => void = () => undefined;
}

/** Fills `r` from a header at b[at..at+28). False: bad magic (the stream cannot be trusted). */
export function parseHeader(b: Buffer, at: number, r: Request): boolean {
  if (b.readUInt32BE(at) !== P.REQUEST_MAGIC) return false;
  r.flags = b.readUInt16BE(at + 4);
  r.type = b.readUInt16BE(at + 6);
  r.cookieHi = b.readUInt32BE(at + 8);
  r.cookieLo = b.readUInt32BE(at + 12);
  const hi = b.readUInt32BE(at + 16);
  // Offsets past 2^53 cannot be exact numbers; anything that large is past
  // any export, so it becomes Infinity and fails the range check.
  r.offset = hi >= 0x200000 ? Infinity : hi * 0x100000000 + b.readUInt32BE(at + 20);
  r.length = b.readUInt32BE(at + 24);
  r.payload = null;
  return true;
}

const ALLOWED_FLAGS: Record<number, number> = {
  [P.CMD_READ]: P.CMD_FLAG_DF,
  [P.CMD_WRITE]: P.CMD_FLAG_FUA,
  [P.CMD_DISC]: 0,
  [P.CMD_FLUSH]: 0,
  [P.CMD_TRIM]: P.CMD_FLAG_FUA,
  [P.CMD_CACHE]: 0,
  [P.CMD_WRITE_ZEROES]: P.CMD_FLAG_FUA | P.CMD_FLAG_NO_HOLE | P.CMD_FLAG_FAST_ZERO,
  [P.CMD_BLOCK_STATUS]: P.CMD_FLAG_REQ_ONE,
};

/** 0 when the request may run, else the NBD error to reply with. */
export function check(r: Request, exp: ExportInfo, size: number, structured: boolean, allocationContext: boolean): number {
  const allowed = ALLOWED_FLAGS[r.type];
  if (allowed === undefined) return P.EINVAL;
  if ((r.flags & ~allowed) !== 0) return P.EINVAL;
  if (r.type === P.CMD_DISC || r.type === P.CMD_FLUSH) return 0;
  const writes = r.type === P.CMD_WRITE || r.type === P.CMD_TRIM || r.type === P.CMD_WRITE_ZEROES;
  if (writes && exp.flags & P.TF_READ_ONLY) return P.EPERM;
  if (r.type === P.CMD_BLOCK_STATUS && !(structured && allocationContext)) return P.EINVAL;
  if (r.length === 0) return P.EINVAL;
  if ((r.type === P.CMD_READ || r.type === P.CMD_WRITE) && r.length > exp.maxPayload) return P.EINVAL;
  if (r.offset % exp.minBlock !== 0 || r.length % exp.minBlock !== 0) {
    if (r.type !== P.CMD_BLOCK_STATUS) return P.EINVAL;
  }
  if (!(r.offset + r.length <= size)) {
    return r.type === P.CMD_WRITE || r.type === P.CMD_WRITE_ZEROES ? P.ENOSPC : P.EINVAL;
  }
  return 0;
}
