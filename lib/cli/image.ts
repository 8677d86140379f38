// blockring image write SOURCE TARGET [--verify]: a raw disk image (or a
// .gz of one) onto a block device or file, O_DIRECT with exclusive access and
// many writes in flight, as disk-imaging tools do.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

import { Ring } from '../ring';
import type { BlockDevice } from '../block-device';
import { parseSize } from './create';
import { parseCommand, type Subcommand } from './subcommand';

const HELP = `usage: blockring image write SOURCE TARGET [--verify] [--depth N] [--block-size SIZE]

Writes the raw disk image SOURCE onto TARGET, a block device or a file (created if missing).
SOURCE may be gzip-compressed (.gz); it is decompressed while writing. TARGET is opened with
O_DIRECT and exclusively (a mounted or otherwise open block device is refused with EBUSY); a
block device smaller than the image is refused before anything is written.

  --verify           read TARGET back and compare it with SOURCE (SHA-256)
  --depth N          writes in flight (default 32)
  --block-size SIZE  bytes per write (default 1M)
  -h, --help
`;

function fail(message: string, code = 'ERR_USAGE'): Error {
  return Object.assign(new Error(message), { code });
}

const MiB = 1 << 20;
const fmtBytes = (n: number): string => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`);
const fmtTime = (s: number): string => {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
};

/** Counts bytes through it and redraws a progress line on a TTY. */
class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #tty = process.stderr.isTTY === true;
  readonly #started = Date.now();
  #done = 0;
  #drawn = 0;

  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
  }

  add(n: number): void {
    this.#done += n;
    if (this.#tty && Date.now() - this.#drawn >= 200) this.draw();
  }

  draw(): void {
    if (!this.#tty) return;
    this.#drawn = Date.now();
    const seconds = Math.max((Date.now() - this.#started) / 1000, 1e-3);
    const rate = this.#done / seconds;
    const frac = this.#total > 0 ? Math.min(this.#done / this.#total, 1) : 0;
    const width = 30;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
    const eta = rate > 0 ? (this.#total - this.#done) / rate : Infinity;
    process.stderr.write(`\r${this.#label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `${fmtBytes(this.#done)} ${fmtBytes(rate)}/s ETA ${fmtTime(eta)}  `);
  }

  end(): void {
    if (!this.#tty) return;
    this.draw();
    process.stderr.write('\n');
  }
}

function meter(onBytes: (n: number) => void, hash?: crypto.Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        onBytes(chunk.length);
      } catch (e) {
        cb(e as Error);
        return;
      }
      hash?.update(chunk);
      cb(null, chunk);
    },
  });
}

// The decompressed size of a .gz from its trailer (ISIZE, modulo 2^32): a
// lower bound good enough to refuse a target that is clearly too small.
function gzipSize(path: string, compressed: number): number {
  if (compressed < 18) return 0;
  const fd = fs.openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, compressed - 4);
    return b.readUInt32LE(0);
  } finally {
    fs.closeSync(fd);
  }
}

async function openTarget(ring: Ring, target: string): Promise<BlockDevice> {
  const exists = fs.existsSync(target);
  const isBlock = exists && fs.statSync(target).isBlockDevice();
  const options = isBlock ? { direct: true, exclusive: true } : { direct: true, exclusive: true, create: true, growable: true };
  try {
    return await ring.open(target, options);
  } catch (e) {
    // tmpfs and some other file systems refuse O_DIRECT on files.
    if ((e as { code?: string }).code === 'EINVAL' && !isBlock) return ring.open(target, { ...options, direct: false });
    throw e;
  }
}

async function write(source: string, target: string, verify: boolean, depth: number, chunk: number): Promise<number> {
  const compressed = fs.statSync(source).size;
  const gz = /\.gz$/i.test(source);
  const size = gz ? gzipSize(source, compressed) : compressed;
  await using ring = new Ring({ depth: 2 ** Math.ceil(Math.log2(Math.max(depth, 32))) });
  await using dev = await openTarget(ring, target);
  if ((dev.isBlockDevice || !dev.growable) && size > dev.size) {
    throw fail(`${target} is too small: ${source} is ${size} bytes (${fmtBytes(size)}), ${target} holds ` +
      `${dev.size} bytes (${fmtBytes(dev.size)})`, 'ERR_TARGET_TOO_SMALL');
  }
  const sourceHash = crypto.createHash('sha256');
  let written = 0;
  const progress = new Progress('writing', compressed);
  const stages: (Readable | Transform)[] = [fs.createReadStream(source, { highWaterMark: chunk }), meter((n) => progress.add(n))];
  if (gz) stages.push(zlib.createGunzip());
  stages.push(meter((n) => {
    written += n;
    if ((dev.isBlockDevice || !dev.growable) && written > dev.size) {
      throw fail(`${target} is too small: ${source} holds more than ${dev.size} bytes (${fmtBytes(dev.size)})`,
        'ERR_TARGET_TOO_SMALL');
    }
  }, sourceHash));
  const started = Date.now();
  await pipeline([...stages, dev.createWriteStream({ depth, highWaterMark: chunk })]);
  await dev.flush();
  progress.end();
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`wrote ${written} bytes (${fmtBytes(written)}) to ${target} in ${seconds.toFixed(1)} s` +
    ` (${fmtBytes(written / Math.max(seconds, 1e-3))}/s)\n`);
  if (!verify) return 0;
  const check = new Progress('verifying', written);
  const targetHash = crypto.createHash('sha256');
  if (written > 0) {
    await pipeline(dev.createReadStream({ start: 0, end: written - 1, depth, highWaterMark: chunk }),
      meter((n) => check.add(n), targetHash), new Writable({ write: (_c, _e, cb) => cb() }));
  }
  check.end();
  const want = sourceHash.digest('hex');
  const got = targetHash.digest('hex');
  if (want !== got) {
    process.stderr.write(`blockring image write: verify failed: ${target} differs from ${source} (sha256 ${got}, expected ${want})\n`);
    return 1;
  }
  process.stdout.write(`verified ${written} bytes (sha256 ${want})\n`);
  return 0;
}

export const image: Subcommand = {
  name: 'image',
  summary: 'write a raw or .gz disk image to a block device or file (image write SOURCE TARGET)',
  async run(argv) {
    const parsed = parseCommand(argv, {
      verify: { type: 'boolean' },
      depth: { type: 'string' },
      'block-size': { type: 'string' },
    }, HELP);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const [action, source, target, ...extra] = positionals;
    if (action !== 'write' || source === undefined || target === undefined || extra.length) {
      process.stderr.write(HELP);
      return 2;
    }
    const depth = values.depth === undefined ? 32 : Number(values.depth);
    if (!Number.isSafeInteger(depth) || depth < 1 || depth > 1024) throw fail('--depth must be from 1 to 1024');
    const chunk = values['block-size'] === undefined ? MiB : parseSize(values['block-size'], '--block-size');
    if (chunk < 4096 || chunk > 64 * MiB) throw fail('--block-size must be from 4K to 64M');
    if (!fs.existsSync(source)) throw fail(`${source}: no such file`);
    return write(source, target, values.verify === true, depth, chunk);
  },
};
