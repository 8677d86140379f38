// The qcow2 header (QEMU docs/interop/qcow2.rst): parsing with every field
// checked against the file before anything trusts it, and building one for
// createImage. Big-endian throughout. Offsets stay below 2^53 (JS numbers);
// larger ones are refused as invalid.
import { BlockringError } from '../errors';

export const QCOW2_MAGIC = 0x514649fb; // 'QFI\xfb'
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
// QEMU's own limits (QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE): larger tables
// are absurd and would let a hostile header make us allocate gigabytes.
export const MAX_L1_BYTES = 32 << 20;
export const MAX_REFTABLE_BYTES = 8 << 20;
export const V3_HEADER_LENGTH = 112;

export const INCOMPAT_DIRTY = 1;
export const INCOMPAT_CORRUPT = 2;
export const INCOMPAT_DATA_FILE = 4;
export const INCOMPAT_COMPRESSION = 8;
export const INCOMPAT_EXTL2 = 16;
const INCOMPAT_KNOWN = 31;
export const COMPAT_LAZY_REFCOUNTS = 1;

export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: number;
  compatible: number;
  autoclear: number;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile: string | null;
  backingFormat: string | null;
}

export function invalid(path: string, why: string): BlockringError {
  return new BlockringError('ERR_QCOW2_INVALID', `'${path}' is not a valid qcow2 image: ${why}`);
}

export function u64(b: Buffer, o: number): number {
  const hi = b.readUInt32BE(o);
  if (hi >= 0x200000) return Number.POSITIVE_INFINITY; // >= 2^53: never a usable offset
  return hi * 0x100000000 + b.readUInt32BE(o + 4);
}

export function putU64(b: Buffer, o: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), o);
  b.writeUInt32BE(v >>> 0, o + 4);
}

/** Feature words above 2^53 keep their low 32 bits plus a marker bit. */
function featureWord(b: Buffer, o: number): number {
  const hi = b.readUInt32BE(o);
  const lo = b.readUInt32BE(o + 4);
  return hi ? lo + 0x100000000 : lo; // any high bit is unknown to us; keep it visible
}

/**
 * Parses and validates the header cluster. `head` holds the start of the
 * file (at least one cluster, or the whole file if shorter); `fileSize`
 * bounds every offset.
 */
export function parseHeader(path: string, head: Buffer, fileSize: number): Qcow2Header {
  if (head.length < 72) throw invalid(path, 'file too short for a header');
  if (head.readUInt32BE(0) !== QCOW2_MAGIC) throw invalid(path, 'bad magic');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw new BlockringError('ERR_QCOW2_UNSUPPORTED', `'${path}': qcow2 version ${version} is not supported`);
  }
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw invalid(path, `cluster_bits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  }
  const cs = 2 ** clusterBits;
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(head, 8),
    backingFileSize: head.readUInt32BE(16),
    clusterBits,
    size: u64(head, 24),
    cryptMethod: head.readUInt32BE(32),
    l1Size: head.readUInt32BE(36),
    l1TableOffset: u64(head, 40),
    refcountTableOffset: u64(head, 48),
    refcountTableClusters: head.readUInt32BE(56),
    nbSnapshots: head.readUInt32BE(60),
    snapshotsOffset: u64(head, 64),
    incompatible: 0,
    compatible: 0,
    autoclear: 0,
    refcountOrder: 4,
    headerLength: 72,
    compressionType: 0,
    backingFile: null,
    backingFormat: null,
  };
  if (version === 3) {
    if (head.length < 104) throw invalid(path, 'file too short for a version 3 header');
    h.incompatible = featureWord(head, 72);
    h.compatible = featureWord(head, 80);
    h.autoclear = featureWord(head, 88);
    h.refcountOrder = head.readUInt32BE(96);
    h.headerLength = head.readUInt32BE(100);
    if (h.headerLength < 104 || h.headerLength > cs || h.headerLength % 8 !== 0 && h.headerLength !== 104) {
      throw invalid(path, `header_length ${h.headerLength}`);
    }
    if (h.headerLength > head.length) throw invalid(path, 'header longer than the file');
    if (h.headerLength > 104) h.compressionType = head.readUInt8(104);
    const unknown = h.incompatible & ~INCOMPAT_KNOWN;
    if (unknown || h.incompatible >= 0x100000000) {
      throw new BlockringError('ERR_QCOW2_INCOMPATIBLE_FEATURE',
        `'${path}' uses incompatible qcow2 features this reader does not know (bits 0x${unknown.toString(16)})`);
    }
    if (h.incompatible & INCOMPAT_DATA_FILE) {
      throw new BlockringError('ERR_QCOW2_UNSUPPORTED', `'${path}' uses an external data file, which is not supported`);
    }
    if (!(h.incompatible & INCOMPAT_COMPRESSION)) h.compressionType = 0;
    if (h.compressionType > 1) throw invalid(path, `unknown compression type ${h.compressionType}`);
  }
  if (h.refcountOrder > 6) throw invalid(path, `refcount_order ${h.refcountOrder}`);
  if (h.cryptMethod !== 0) {
    throw new BlockringError('ERR_QCOW2_UNSUPPORTED', `'${path}' is encrypted, which is not supported`);
  }
  if (!Number.isSafeInteger(h.size)) throw invalid(path, 'virtual size too large');
  // L1 must cover the virtual size and stay within QEMU's bound.
  const l2Entries = cs / ((h.incompatible & INCOMPAT_EXTL2) ? 16 : 8);
  const need = Math.ceil(h.size / (cs * l2Entries));
  if (h.l1Size < need) throw invalid(path, `L1 table (${h.l1Size} entries) too small for the virtual size`);
  if (h.l1Size * 8 > MAX_L1_BYTES) throw invalid(path, 'L1 table too large');
  checkTable(path, 'L1 table', h.l1TableOffset, h.l1Size * 8, cs, fileSize);
  if (h.refcountTableClusters === 0 || h.refcountTableClusters * cs > MAX_REFTABLE_BYTES) {
    throw invalid(path, `refcount table of ${h.refcountTableClusters} clusters`);
  }
  checkTable(path, 'refcount table', h.refcountTableOffset, h.refcountTableClusters * cs, cs, fileSize);
  if (overlaps(h.l1TableOffset, h.l1Size * 8, h.refcountTableOffset, h.refcountTableClusters * cs)) {
    throw invalid(path, 'L1 table overlaps the refcount table');
  }
  if (h.nbSnapshots) checkTable(path, 'snapshot table', h.snapshotsOffset, 1, cs, fileSize);
  if (h.backingFileOffset) {
    if (h.backingFileSize === 0 || h.backingFileSize > 1023) throw invalid(path, 'backing file name length');
    const end = h.backingFileOffset + h.backingFileSize;
    if (end > cs || end > head.length) throw invalid(path, 'backing file name outside the header cluster');
    h.backingFile = head.toString('utf8', h.backingFileOffset, end);
  }
  parseExtensions(path, head, h, cs);
  return h;
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

function checkTable(path: string, what: string, offset: number, bytes: number, cs: number, fileSize: number): void {
  if (!Number.isSafeInteger(offset) || offset % cs !== 0) throw invalid(path, `${what} offset not cluster aligned`);
  if (offset === 0) throw invalid(path, `${what} overlaps the header`);
  if (offset + bytes > fileSize) throw invalid(path, `${what} lies past the end of the file`);
}

function parseExtensions(path: string, head: Buffer, h: Qcow2Header, cs: number): void {
  let o = h.version === 3 ? h.headerLength : 72;
  const limit = Math.min(cs, head.length);
  // Every extension advances by at least 8 bytes, so this ends.
  while (o + 8 <= limit) {
    const type = head.readUInt32BE(o);
    const len = head.readUInt32BE(o + 4);
    if (type === EXT_END) return;
    const data = o + 8;
    if (len > limit - data) throw invalid(path, 'header extension past the header cluster');
    if (type === EXT_BACKING_FORMAT) h.backingFormat = head.toString('utf8', data, data + len);
    o = data + Math.ceil(len / 8) * 8;
  }
  // Running off the end without an end marker: QEMU treats this as invalid.
  if (h.version === 3 || o < limit) throw invalid(path, 'header extensions not terminated');
}

export interface NewImageLayout {
  header: Buffer;
  /** Writes (offset, bytes) that make up the empty image. */
  pieces: Array<{ offset: number; data: Buffer }>;
  fileSize: number;
}

/**
 * Lays out an empty image: header cluster, refcount table, refcount blocks
 * covering the metadata itself, then the L1 table.
 */
export function buildImage(o: {
  size: number;
  clusterBits: number;
  version: 2 | 3;
  backingFile?: string | undefined;
  backingFormat?: string | undefined;
  lazyRefcounts?: boolean | undefined;
}): NewImageLayout {
  const cs = 2 ** o.clusterBits;
  const l2Entries = cs / 8;
  const l1Size = Math.max(1, Math.ceil(o.size / (cs * l2Entries)));
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  const perBlock = (cs * 8) / 16; // 16-bit refcounts
  let rb = 1;
  let rt = 1;
  for (;;) {
    const total = 1 + rt + rb + l1Clusters;
    const nrb = Math.ceil(total / perBlock);
    const nrt = Math.ceil((nrb * 8) / cs);
    if (nrb === rb && nrt === rt) break;
    rb = nrb;
    rt = nrt;
  }
  const total = 1 + rt + rb + l1Clusters;
  const header = Buffer.alloc(cs);
  header.writeUInt32BE(QCOW2_MAGIC, 0);
  header.writeUInt32BE(o.version, 4);
  header.writeUInt32BE(o.clusterBits, 20);
  putU64(header, 24, o.size);
  header.writeUInt32BE(l1Size, 36);
  putU64(header, 40, (1 + rt + rb) * cs);
  putU64(header, 48, cs);
  header.writeUInt32BE(rt, 56);
  let ext = 72;
  if (o.version === 3) {
    if (o.lazyRefcounts) putU64(header, 80, COMPAT_LAZY_REFCOUNTS);
    header.writeUInt32BE(4, 96);
    header.writeUInt32BE(V3_HEADER_LENGTH, 100);
    ext = V3_HEADER_LENGTH;
  }
  if (o.backingFormat !== undefined) {
    const f = Buffer.from(o.backingFormat, 'utf8');
    header.writeUInt32BE(EXT_BACKING_FORMAT, ext);
    header.writeUInt32BE(f.length, ext + 4);
    f.copy(header, ext + 8);
    ext += 8 + Math.ceil(f.length / 8) * 8;
  }
  ext += 8; // end-of-extensions marker (zeros)
  if (o.backingFile !== undefined) {
    const name = Buffer.from(o.backingFile, 'utf8');
    if (name.length === 0 || name.length > 1023 || ext + name.length > cs) {
      throw new BlockringError('ERR_QCOW2_INVALID', 'backing file name too long for the header cluster');
    }
    name.copy(header, ext);
    putU64(header, 8, ext);
    header.writeUInt32BE(name.length, 16);
  }
  const reftable = Buffer.alloc(rt * cs);
  for (let i = 0; i < rb; i++) putU64(reftable, i * 8, (1 + rt + i) * cs);
  const blocks = Buffer.alloc(rb * cs);
  for (let c = 0; c < total; c++) blocks.writeUInt16BE(1, c * 2);
  const l1 = Buffer.alloc(l1Clusters * cs);
  return {
    header,
    pieces: [
      { offset: 0, data: header },
      { offset: cs, data: reftable },
      { offset: (1 + rt) * cs, data: blocks },
      { offset: (1 + rt + rb) * cs, data: l1 },
    ],
    fileSize: total * cs,
  };
}
