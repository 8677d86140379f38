// node:stream Readable and Writable over a BlockDevice, as fs.createReadStream
// and fs.createWriteStream, with `depth` requests in flight. Under O_DIRECT
// every request goes through aligned bounce buffers at aligned offsets; the
// unaligned head and tail of the range are sliced off (reads) or merged into
// the existing block (writes).
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';

import { allocAligned } from './aligned';
import type { BlockDevice } from './block-device';
import { checkOptions, checkUint, rangeError } from './validate';

export interface ReadStreamOptions {
  /** First byte to read. Default 0. */
  start?: number;
  /** Last byte to read, inclusive (as fs.createReadStream). Default: the end of the device. */
  end?: number;
  /** Bytes per request and per chunk pushed (rounded up to the O_DIRECT alignment). Default 1 MiB. */
  highWaterMark?: number;
  /** Requests in flight. Default 8. */
  depth?: number;
}

export interface WriteStreamOptions {
  /** Device offset of the first byte written. Default 0. */
  start?: number;
  /** Bytes per write request (rounded up to the O_DIRECT alignment); also the stream's buffering. Default 1 MiB. */
  highWaterMark?: number;
  /** Write requests in flight. Default 8. */
  depth?: number;
}

const DEFAULT_CHUNK = 1 << 20;
const DEFAULT_DEPTH = 8;

function alignment(dev: BlockDevice): number {
  return dev.direct ? Math.max(dev.offsetAlignment, dev.memoryAlignment) : 1;
}
const roundUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function checkDepth(v: unknown): number {
  const depth = v === undefined ? DEFAULT_DEPTH : checkUint(v, 'options.depth');
  if (depth < 1 || depth > 1024) throw rangeError('ERR_OUT_OF_RANGE', `options.depth must be from 1 to 1024, got ${depth}`);
  return depth;
}

function checkChunk(v: unknown, dev: BlockDevice): number {
  const n = v === undefined ? DEFAULT_CHUNK : checkUint(v, 'options.highWaterMark');
  if (n < 1) throw rangeError('ERR_OUT_OF_RANGE', 'options.highWaterMark must be at least 1');
  return roundUp(n, alignment(dev));
}

/** @internal dev.createReadStream() */
export function createReadStream(dev: BlockDevice, options?: ReadStreamOptions): Readable {
  const o = checkOptions(options, 'options', ['start', 'end', 'highWaterMark', 'depth']);
  const start = o.start === undefined ? 0 : checkUint(o.start, 'options.start');
  const end = o.end === undefined ? Infinity : checkUint(o.end, 'options.end') + 1; // exclusive
  const chunk = checkChunk(o.highWaterMark, dev);
  const depth = checkDepth(o.depth);
  const align = alignment(dev);
  let next = start - (start % align); // next aligned offset to request
  let done = false;
  const inflight: Promise<Buffer | null>[] = [];

  const readAt = async (offset: number): Promise<Buffer | null> => {
    const want = Math.min(chunk, roundUp(Math.min(end, dev.size) - offset, align));
    const buf = align > 1 ? allocAligned(want, dev) : Buffer.allocUnsafe(want);
    const n = await dev.read(buf, offset);
    // Keep [max(start, offset), min(end, offset + n)).
    const from = Math.max(start - offset, 0);
    const to = Math.min(end - offset, n);
    return to > from ? buf.subarray(from, to) : null;
  };
  const fill = (): void => {
    while (inflight.length < depth && next < Math.min(end, dev.size)) {
      inflight.push(readAt(next));
      next += chunk;
    }
  };
  let pumping = false;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      if (pumping || done) return;
      pumping = true;
      void (async () => {
        try {
          fill();
          // Push in offset order; stop when the consumer pushes back.
          let more = true;
          while (more && inflight.length) {
            const buf = await inflight.shift()!;
            fill();
            if (buf === null) continue; // a short read: nothing in range
            more = stream.push(buf);
          }
          if (!inflight.length && next >= Math.min(end, dev.size)) {
            done = true;
            stream.push(null);
          }
        } catch (e) {
          done = true;
          stream.destroy(e as Error);
        } finally {
          pumping = false;
        }
      })();
    },
  });
  return stream;
}

/** @internal dev.createWriteStream() */
export function createWriteStream(dev: BlockDevice, options?: WriteStreamOptions): Writable {
  const o = checkOptions(options, 'options', ['start', 'highWaterMark', 'depth']);
  const start = o.start === undefined ? 0 : checkUint(o.start, 'options.start');
  const chunk = checkChunk(o.highWaterMark, dev);
  const depth = checkDepth(o.depth);
  const align = alignment(dev);
  // Staged bytes cover [stageOffset, stageOffset + staged); stageOffset is aligned.
  let stageOffset = start - (start % align);
  let stage = align > 1 ? allocAligned(chunk, dev) : Buffer.allocUnsafe(chunk);
  let staged = 0;
  let headPending = start % align; // bytes of the first block before `start`, to read back first
  const inflight = new Set<Promise<unknown>>();
  let failure: Error | null = null;

  const issue = (buf: Buffer, offset: number): void => {
    const p: Promise<unknown> = dev.write(buf, offset).catch((e: Error) => {
      failure ??= e;
    }).finally(() => inflight.delete(p));
    inflight.add(p);
  };
  const room = async (): Promise<void> => {
    while (inflight.size >= depth) await Promise.race(inflight);
    if (failure) throw failure;
  };
  // Under O_DIRECT an unaligned start keeps the bytes before it: read the block first.
  const readHead = async (): Promise<void> => {
    if (!headPending) return;
    const block = allocAligned(align, dev);
    const n = await dev.read(block, stageOffset);
    block.copy(stage, 0, 0, Math.min(n, headPending));
    staged = headPending;
    headPending = 0;
  };

  return new Writable({
    highWaterMark: chunk,
    write(data: Buffer, _enc, cb) {
      void (async () => {
        try {
          await readHead();
          let at = 0;
          while (at < data.length) {
            const n = Math.min(chunk - staged, data.length - at);
            data.copy(stage, staged, at, at + n);
            staged += n;
            at += n;
            if (staged === chunk) {
              await room();
              issue(stage, stageOffset);
              stageOffset += chunk;
              stage = align > 1 ? allocAligned(chunk, dev) : Buffer.allocUnsafe(chunk);
              staged = 0;
            }
          }
          cb();
        } catch (e) {
          cb(e as Error);
        }
      })();
    },
    final(cb) {
      void (async () => {
        try {
          await readHead();
          const whole = staged - (staged % align);
          if (whole) {
            await room();
            issue(stage.subarray(0, whole), stageOffset);
          }
          const tail = staged - whole;
          const tailOffset = stageOffset + whole;
          await Promise.all(inflight);
          if (failure) throw failure;
          if (tail) await writeTail(dev, stage.subarray(whole, staged), tailOffset, align);
          cb();
        } catch (e) {
          cb(e as Error);
        }
      })();
    },
  });
}

// The last, partial block under O_DIRECT: merged into the block on the device
// (read, overlay, write) when that block lies inside the device; past the
// end of a file (whose size need not be aligned) written through a buffered
// fd instead, as O_DIRECT cannot write part of a block.
async function writeTail(dev: BlockDevice, data: Buffer, offset: number, align: number): Promise<void> {
  if (offset + align <= dev.size) {
    const block = allocAligned(align, dev);
    await dev.read(block, offset);
    data.copy(block);
    await dev.write(block, offset);
    return;
  }
  if (!dev.growable && offset + data.length > dev.size) {
    throw rangeError('ERR_OUT_OF_RANGE', `write beyond the end of the device (${offset} + ${data.length} > size ${dev.size})`);
  }
  await dev.flush();
  const fh = await fs.promises.open(dev.path, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  if (offset + data.length > dev.size) await dev.resize(offset + data.length);
}
