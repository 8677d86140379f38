// Fixed newstyle handshake and option negotiation (proto.md "Handshake
// phase"). Pure protocol: the connection hands in one complete option at a
// time and sends what this writes; every length inside an option is checked
// against the option's own length before it is used.
import type { ReplyWriter } from './output';
import * as P from './protocol';

/** What negotiation needs to know about the export. */
export interface ExportInfo {
  readonly name: string;
  readonly description: string;
  readonly size: number;
  /** Transmission flags without the ones that depend on negotiation (DF). */
  readonly flags: number;
  readonly minBlock: number;
  readonly preferredBlock: number;
  readonly maxPayload: number;
}

/** After an option: keep negotiating, enter transmission, start TLS (after the ACK) or hang up. */
export type Outcome = 'continue' | 'transmission' | 'starttls' | 'close';

/** TLS policy of an export: none offered, offered, or required before any other option. */
export type TlsMode = 'off' | 'on' | 'require';

export class Negotiation {
  structured = false;
  /** base:allocation selected by NBD_OPT_SET_META_CONTEXT. */
  allocationContext = false;
  noZeroes = false;
  /** The connection runs over TLS (NBD_OPT_STARTTLS done). */
  secure = false;
  readonly #exp: ExportInfo;
  readonly #out: ReplyWriter;
  readonly #tls: TlsMode;

  constructor(exp: ExportInfo, out: ReplyWriter, tls: TlsMode = 'off') {
    this.#exp = exp;
    this.#out = out;
    this.#tls = tls;
  }

  /** TLS is up: what was negotiated in plaintext does not carry over (proto.md "TLS support"). */
  startedTls(): void {
    this.secure = true;
    this.structured = false;
    this.allocationContext = false;
  }

  /** S: the greeting. */
  greet(): void {
    const b = this.#out.reserve(18);
    const at = this.#out.at;
    b.writeBigUInt64BE(P.NBDMAGIC, at);
    b.writeBigUInt64BE(P.IHAVEOPT, at + 8);
    b.writeUInt16BE(P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES, at + 16);
  }

  /** C: client flags. False: unknown or missing bits, so hang up (proto.md says so). */
  clientFlags(flags: number): boolean {
    if ((flags & ~(P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES)) !== 0) return false;
    if (!(flags & P.FLAG_FIXED_NEWSTYLE)) return false;
    this.noZeroes = (flags & P.FLAG_NO_ZEROES) !== 0;
    return true;
  }

  /** Transmission flags as sent to this client. */
  get transmissionFlags(): number {
    return this.#exp.flags | (this.structured ? P.TF_SEND_DF : 0);
  }

  /** One option with its whole payload. */
  option(opt: number, data: Buffer): Outcome {
    if (opt === P.OPT_STARTTLS) return this.#startTls(data);
    if (this.#tls === 'require' && !this.secure && opt !== P.OPT_ABORT) {
      // No error reply exists for NBD_OPT_EXPORT_NAME: hang up.
      if (opt === P.OPT_EXPORT_NAME) return 'close';
      return this.#error(opt, P.REP_ERR_TLS_REQD, 'this server requires TLS: send NBD_OPT_STARTTLS first');
    }
    switch (opt) {
      case P.OPT_EXPORT_NAME:
        return this.#exportName(data);
      case P.OPT_ABORT:
        this.#reply(opt, P.REP_ACK);
        return 'close';
      case P.OPT_LIST:
        if (data.length !== 0) return this.#error(opt, P.REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
        this.#reply(opt, P.REP_SERVER, u32(Buffer.byteLength(this.#exp.name)), Buffer.from(this.#exp.name));
        this.#reply(opt, P.REP_ACK);
        return 'continue';
      case P.OPT_INFO:
      case P.OPT_GO:
        return this.#info(opt, data);
      case P.OPT_STRUCTURED_REPLY:
        if (data.length !== 0) return this.#error(opt, P.REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        this.structured = true;
        this.#reply(opt, P.REP_ACK);
        return 'continue';
      case P.OPT_LIST_META_CONTEXT:
      case P.OPT_SET_META_CONTEXT:
        return this.#metaContext(opt, data);
      default:
        return this.#error(opt, P.REP_ERR_UNSUP, `option ${opt} is not supported`);
    }
  }

  #startTls(data: Buffer): Outcome {
    const opt = P.OPT_STARTTLS;
    if (this.#tls === 'off') return this.#error(opt, P.REP_ERR_UNSUP, 'this server has no TLS configured');
    if (data.length !== 0) return this.#error(opt, P.REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
    if (this.secure) return this.#error(opt, P.REP_ERR_INVALID, 'TLS is already running');
    this.#reply(opt, P.REP_ACK);
    return 'starttls';
  }

  #exportName(data: Buffer): Outcome {
    // No error reply exists for NBD_OPT_EXPORT_NAME: an unknown name hangs up.
    if (!this.#knows(data.toString('utf8'))) return 'close';
    const n = this.noZeroes ? 10 : 134;
    const b = this.#out.reserve(n);
    const at = this.#out.at;
    putU64(b, at, this.#exp.size);
    b.writeUInt16BE(this.transmissionFlags, at + 8);
    b.fill(0, at + 10, at + n);
    return 'transmission';
  }

  // C: u32 name length, name, u16 info count, u16 infos.
  #info(opt: number, data: Buffer): Outcome {
    if (data.length < 6) return this.#error(opt, P.REP_ERR_INVALID, 'option too short');
    const nameLen = data.readUInt32BE(0);
    if (nameLen > data.length - 6) return this.#error(opt, P.REP_ERR_INVALID, 'export name overruns the option');
    const count = data.readUInt16BE(4 + nameLen);
    if (data.length !== 6 + nameLen + 2 * count) return this.#error(opt, P.REP_ERR_INVALID, 'information request count does not match the option length');
    const name = data.toString('utf8', 4, 4 + nameLen);
    if (!this.#knows(name)) return this.#error(opt, P.REP_ERR_UNKNOWN, `no export named '${name}'`);
    const e = this.#exp;
    const exportInfo = Buffer.alloc(12);
    exportInfo.writeUInt16BE(P.INFO_EXPORT, 0);
    putU64(exportInfo, 2, e.size);
    exportInfo.writeUInt16BE(this.transmissionFlags, 10);
    this.#reply(opt, P.REP_INFO, exportInfo);
    let sentName = false;
    let sentDescription = false;
    for (let i = 0; i < count; i++) {
      const info = data.readUInt16BE(6 + nameLen + 2 * i);
      if (info === P.INFO_NAME && !sentName) {
        sentName = true;
        this.#reply(opt, P.REP_INFO, u16(P.INFO_NAME), Buffer.from(e.name));
      } else if (info === P.INFO_DESCRIPTION && !sentDescription && e.description) {
        sentDescription = true;
        this.#reply(opt, P.REP_INFO, u16(P.INFO_DESCRIPTION), Buffer.from(e.description));
      }
    }
    // Always sent: the minimum block is O_DIRECT's alignment.
    const bs = Buffer.alloc(14);
    bs.writeUInt16BE(P.INFO_BLOCK_SIZE, 0);
    bs.writeUInt32BE(e.minBlock, 2);
    bs.writeUInt32BE(e.preferredBlock, 6);
    bs.writeUInt32BE(e.maxPayload, 10);
    this.#reply(opt, P.REP_INFO, bs);
    this.#reply(opt, P.REP_ACK);
    return opt === P.OPT_GO ? 'transmission' : 'continue';
  }

  // C: u32 name length, name, u32 query count, queries (u32 length, string).
  #metaContext(opt: number, data: Buffer): Outcome {
    const set = opt === P.OPT_SET_META_CONTEXT;
    if (set && !this.structured) return this.#error(opt, P.REP_ERR_INVALID, 'negotiate structured replies first');
    if (data.length < 8) return this.#error(opt, P.REP_ERR_INVALID, 'option too short');
    const nameLen = data.readUInt32BE(0);
    if (nameLen > data.length - 8) return this.#error(opt, P.REP_ERR_INVALID, 'export name overruns the option');
    const name = data.toString('utf8', 4, 4 + nameLen);
    const count = data.readUInt32BE(4 + nameLen);
    const queries: string[] = [];
    let at = 8 + nameLen;
    for (let i = 0; i < count; i++) {
      if (data.length - at < 4) return this.#error(opt, P.REP_ERR_INVALID, 'query overruns the option');
      const len = data.readUInt32BE(at);
      at += 4;
      if (len > data.length - at || len > P.MAX_STRING) return this.#error(opt, P.REP_ERR_INVALID, 'query overruns the option');
      queries.push(data.toString('utf8', at, at + len));
      at += len;
    }
    if (at !== data.length) return this.#error(opt, P.REP_ERR_INVALID, 'trailing bytes after the queries');
    if (!this.#knows(name)) return this.#error(opt, P.REP_ERR_UNKNOWN, `no export named '${name}'`);
    const matches = set
      ? queries.includes(P.META_BASE_ALLOCATION)
      : count === 0 || queries.some((q) => q === P.META_BASE_ALLOCATION || q === 'base:');
    if (set) this.allocationContext = matches;
    if (matches) {
      const id = set ? P.CONTEXT_BASE_ALLOCATION : 0;
      this.#reply(opt, P.REP_META_CONTEXT, u32(id), Buffer.from(P.META_BASE_ALLOCATION));
    }
    this.#reply(opt, P.REP_ACK);
    return 'continue';
  }

  #knows(name: string): boolean {
    return name === this.#exp.name || name === '';
  }

  #error(opt: number, type: number, message: string): Outcome {
    this.#reply(opt, type, Buffer.from(message));
    return 'continue';
  }

  // S: u64 magic, u32 option, u32 reply type, u32 length, data.
  #reply(opt: number, type: number, ...parts: Buffer[]): void {
    let len = 0;
    for (const p of parts) len += p.length;
    const b = this.#out.reserve(20 + len);
    let at = this.#out.at;
    b.writeBigUInt64BE(P.OPT_REPLY_MAGIC, at);
    b.writeUInt32BE(opt, at + 8);
    b.writeUInt32BE(type, at + 12);
    b.writeUInt32BE(len, at + 16);
    at += 20;
    for (const p of parts) {
      p.copy(b, at);
      at += p.length;
    }
  }
}

export function putU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return b;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v, 0);
  return b;
}
