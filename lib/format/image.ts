// Opening devices by format and creating images. `format` is what the
// caller says, never probed from the file: a guest that writes a qcow2
// header into a raw image must not gain access to a host backing file.
import fs from 'node:fs';
import path from 'node:path';
import type { BlockDevice } from '../block-device';
import { BlockringError } from '../errors';
import { WriteLog } from '../write-log';
import { checkOptions, checkUint, rangeError, typeError } from '../validate';
import { buildImage, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS, parseHeader } from './qcow2-header';
import { type BackingDevice, DEFAULT_CACHE_SIZE, MAX_BACKING_DEPTH, Qcow2Device, type Qcow2Options } from './qcow2';

export type ImageFormat = 'raw' | 'qcow2';

export function checkFormat(v: unknown, name: string): ImageFormat {
  if (v === undefined) return 'raw';
  if (v !== 'raw' && v !== 'qcow2') throw typeError('ERR_INVALID_ARG_VALUE', `${name} must be 'raw' or 'qcow2', got ${String(v)}`);
  return v;
}

/** What openQcow2 needs from the ring: raw opens. */
export type RawOpen = (path: string,
  o: { readOnly: boolean; direct: boolean; growable: boolean; exclusive: boolean; writeLog?: WriteLog | undefined }) => Promise<BlockDevice>;

/** Gives each image of a chain, once open, its native handle (the ring's). */
export type AttachImage = NonNullable<Qcow2Options['attach']>;

export async function openQcow2(open: RawOpen, imagePath: string,
  o: { readOnly: boolean; direct: boolean; exclusive: boolean; cacheSize: number; writeLog?: WriteLog | undefined },
  chain: string[] = [], attach?: AttachImage): Promise<Qcow2Device> {
  const real = fs.realpathSync(imagePath);
  if (chain.includes(real)) {
    throw new BlockringError('ERR_QCOW2_BACKING_LOOP', `backing chain loops back to '${imagePath}'`);
  }
  const here = [...chain, real];
  return Qcow2Device.open(imagePath, {
    openFile: async (p, readOnly, direct) => {
      // With a writeLog the engine records everything the file gets: data the
      // cluster map sends straight to it and the format layer's metadata.
      return open(p, { readOnly, direct, growable: !readOnly, exclusive: o.exclusive, writeLog: o.writeLog });
    },
    openBacking: async (p, format, upper): Promise<BackingDevice> => {
      if (format === 'qcow2') {
        return openQcow2(open, p, { readOnly: true, direct: o.direct, exclusive: false, cacheSize: o.cacheSize }, upper, attach);
      }
      if (upper.includes(fs.realpathSync(p))) {
        throw new BlockringError('ERR_QCOW2_BACKING_LOOP', `backing chain loops back to '${p}'`);
      }
      return open(p, { readOnly: true, direct: false, growable: false, exclusive: false });
    },
  }, { readOnly: o.readOnly, direct: o.direct, cacheSize: o.cacheSize, chain: here, attach });
}

export function checkWriteLog(v: unknown): WriteLog | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof WriteLog)) throw typeError('ERR_INVALID_ARG_TYPE', 'options.writeLog must be a WriteLog');
  return v;
}

export function checkCacheSize(v: unknown): number {
  if (v === undefined) return DEFAULT_CACHE_SIZE;
  return checkUint(v, 'options.cacheSize');
}

export interface CreateImageOptions {
  format?: ImageFormat;
  /** Virtual size in bytes; defaults to the backing image's. */
  size?: number;
  /** Backing file, stored as given (relative paths are relative to the image). */
  backing?: string;
  /** The backing file's format, stored in the header (never probed). Default 'raw'. */
  backingFormat?: ImageFormat;
  /** Power of two from 512 B to 2 MiB. Default 65536. */
  clusterSize?: number;
  /** qcow2 version: 3 (compat 1.1, default) or 2 (compat 0.10). */
  version?: 2 | 3;
}

/** Creates an image file (refusing to overwrite one): an empty qcow2, or a sparse raw file. */
export async function createImage(imagePath: string, options: CreateImageOptions = {}): Promise<void> {
  if (typeof imagePath !== 'string' || imagePath.length === 0) throw typeError('ERR_INVALID_ARG_TYPE', 'path must be a non-empty string');
  const o = checkOptions(options, 'options', ['format', 'size', 'backing', 'backingFormat', 'clusterSize', 'version']);
  const format = checkFormat(o.format, 'options.format');
  let size = o.size === undefined ? undefined : checkUint(o.size, 'options.size');
  const backing = o.backing;
  if (backing !== undefined && (typeof backing !== 'string' || backing.length === 0)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'options.backing must be a non-empty string');
  }
  const backingFormat = o.backingFormat === undefined ? undefined : checkFormat(o.backingFormat, 'options.backingFormat');
  const clusterSize = o.clusterSize === undefined ? 65536 : checkUint(o.clusterSize, 'options.clusterSize');
  const bits = Math.log2(clusterSize);
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw rangeError('ERR_OUT_OF_RANGE', `options.clusterSize must be a power of two from 512 to 2097152, got ${clusterSize}`);
  }
  const version = o.version === undefined ? 3 : o.version;
  if (version !== 2 && version !== 3) throw rangeError('ERR_OUT_OF_RANGE', 'options.version must be 2 or 3');
  if (format === 'raw' && backing !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', 'a raw image has no backing file');
  if (backing !== undefined) {
    const bpath = path.resolve(path.dirname(imagePath), backing);
    const bsize = await imageSize(bpath, backingFormat ?? 'raw');
    size ??= bsize;
  }
  if (size === undefined) throw typeError('ERR_MISSING_ARGS', 'options.size is required without a backing file');
  const fd = await fs.promises.open(imagePath, 'wx', 0o644);
  try {
    if (format === 'raw') {
      await fd.truncate(size);
    } else {
      const layout = buildImage({ size, clusterBits: bits, version, backingFile: backing,
        backingFormat: backing !== undefined ? (backingFormat ?? 'raw') : undefined });
      for (const p of layout.pieces) await fd.write(p.data, 0, p.data.length, p.offset);
      await fd.truncate(layout.fileSize);
    }
    await fd.sync();
  } finally {
    await fd.close();
  }
}

async function imageSize(p: string, format: ImageFormat): Promise<number> {
  const st = await fs.promises.stat(p);
  if (format === 'raw') return st.size;
  const fd = await fs.promises.open(p, 'r');
  try {
    const head = Buffer.alloc(Math.min(st.size, 2 << 20));
    await fd.read(head, 0, head.length, 0);
    return parseHeader(p, head, st.size).size;
  } finally {
    await fd.close();
  }
}

export { MAX_BACKING_DEPTH };
