// vhost-user-blk: serves a BlockDevice or Qcow2Device to a VMM (QEMU,
// cloud-hypervisor) over a unix socket. The native server (native/vhost)
// runs on a thread of its own with an engine of its own; a raw device's
// requests never reach JavaScript. A qcow2 image's reads and writes run
// there too, in place, split by the image's native cluster map; what the map
// cannot do (a metadata miss, allocation, flush, discard) comes here without
// data and goes back as retry or finish. Only requests the format layer
// serves itself (compressed clusters; an image without a native device, e.g.
// over a qcow2 backing; an image whose file has a writeLog, which the ring's
// engine keeps) are copied.
import { BlockDevice } from '../block-device';
import { Qcow2Device } from '../format/qcow2';
import { BlockringError, deviceClosed, fromNative } from '../errors';
import { native, type VhostUserBlkHandle } from '../native';
import { FLAG, OP } from '../records';
import { ENGINES, type EngineName } from '../ring';
import { checkBool, checkOptions, rangeError, typeError } from '../validate';

export interface VhostUserBlkOptions {
  /** Path of the unix socket to listen on (an existing socket file there is replaced). */
  socket: string;
  /** Virtqueues offered to the guest (VIRTIO_BLK_F_MQ), 1 to 64. Default 1. */
  numQueues?: number;
  /** Offer the disk read-only (VIRTIO_BLK_F_RO); implied by a read-only device. */
  readOnly?: boolean;
  /** The server's engine. Default: $BLOCKRING_ENGINE or 'auto'. */
  engine?: EngineName;
  /** Requests the server's engine keeps in flight. Default 256. */
  depth?: number;
  /** What VIRTIO_BLK_T_GET_ID returns (at most 20 bytes). Default 'blockring'. */
  serial?: string;
}

export interface VhostUserBlkStats {
  /** A frontend is connected now. */
  connected: boolean;
  /** Frontends accepted so far. */
  connections: number;
  /** Guest requests completed so far. */
  served: number;
  /** Guest bytes copied to or from the format layer's buffers (0 while data moves in place). */
  copied: number;
}

/** A running vhost-user-blk export of one BlockDevice. Stop it with close(). */
export class VhostUserBlkServer {
  readonly socket: string;
  readonly numQueues: number;
  readonly readOnly: boolean;
  #h: VhostUserBlkHandle | null;

  /** @internal */
  constructor(h: VhostUserBlkHandle, socket: string, numQueues: number, readOnly: boolean) {
    this.#h = h;
    this.socket = socket;
    this.numQueues = numQueues;
    this.readOnly = readOnly;
  }

  /** The engine the server's requests run on. */
  get engine(): string {
    return this.#h ? this.#h.engine : 'closed';
  }

  get stats(): VhostUserBlkStats {
    return this.#h ? this.#h.stats() : { connected: false, connections: 0, served: 0, copied: 0 };
  }

  /**
   * Stops serving: requests in flight complete, the frontend is
   * disconnected and the socket file removed. The device stays open.
   */
  async close(): Promise<void> {
    const h = this.#h;
    this.#h = null;
    h?.close();
  }
}

const OPTION_KEYS = ['socket', 'numQueues', 'readOnly', 'engine', 'depth', 'serial'] as const;

/** Starts serving `device` over vhost-user-blk at `options.socket`. */
export function serveVhostUserBlk(device: BlockDevice | Qcow2Device, options: VhostUserBlkOptions): VhostUserBlkServer {
  const qcow2 = device instanceof Qcow2Device;
  if (!(device instanceof BlockDevice) && !qcow2) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'device must be a BlockDevice or a Qcow2Device');
  }
  if (device.closed) throw deviceClosed(device.path);
  const o = checkOptions(options, 'options', OPTION_KEYS);
  if (typeof o.socket !== 'string' || o.socket.length === 0) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'options.socket must be a non-empty string');
  }
  if (Buffer.byteLength(o.socket) > 107) throw rangeError('ERR_OUT_OF_RANGE', 'options.socket is longer than a unix socket path may be');
  const numQueues = o.numQueues ?? 1;
  if (typeof numQueues !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', 'options.numQueues must be a number');
  if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64) {
    throw rangeError('ERR_OUT_OF_RANGE', `options.numQueues must be an integer from 1 to 64, got ${numQueues}`);
  }
  const depth = o.depth ?? 256;
  if (typeof depth !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', 'options.depth must be a number');
  if (!Number.isInteger(depth) || depth < 1 || depth > 65536) {
    throw rangeError('ERR_OUT_OF_RANGE', `options.depth must be an integer from 1 to 65536, got ${depth}`);
  }
  const engine = o.engine ?? process.env.BLOCKRING_ENGINE ?? 'auto';
  if (typeof engine !== 'string' || !ENGINES.includes(engine)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `unknown engine '${String(engine)}' (expected one of ${ENGINES.join(', ')})`);
  }
  const serial = o.serial ?? 'blockring';
  if (typeof serial !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'options.serial must be a string');
  if (Buffer.byteLength(serial) > 20) throw rangeError('ERR_OUT_OF_RANGE', 'options.serial is longer than 20 bytes');
  if (device instanceof BlockDevice && device._writeLogged && !device.readOnly) {
    // The server's engine runs on a thread of its own, outside the ring's log.
    throw new BlockringError('ERR_NOT_SUPPORTED', `'${device.path}' is opened with a writeLog: serve it over NBD, or open it without one`);
  }
  const readOnly = checkBool(o.readOnly, 'options.readOnly') || device.readOnly;
  const size = device.size;
  // The guest's logical block size: O_DIRECT alignment, else 512 (block
  // devices: their own). A power of two from 512 to 64 KiB.
  const blockSize = Math.max(512, device.direct ? device.offsetAlignment : device.isBlockDevice ? device.logicalBlockSize : 512);
  if (blockSize & (blockSize - 1) || blockSize > 65536) {
    throw new BlockringError('ERR_NOT_SUPPORTED', `device alignment ${blockSize} cannot be a virtio-blk block size`);
  }
  if (size < blockSize) throw new BlockringError('ERR_NOT_SUPPORTED', `device '${device.path}' is smaller than one block`);
  try {
    let h: VhostUserBlkHandle | null = null;
    const onRequest = qcow2 ? delegateTo(device, () => h) : undefined;
    const image = qcow2 ? device._exportImage() : 0;
    h = new native.VhostUserBlkHandle(qcow2 ? -1 : device._fd(), {
      socket: o.socket, engine, depth, numQueues, readOnly, size, direct: device.direct, blockSize,
      offsetAlign: device.offsetAlignment, memAlign: device.memoryAlignment, isBlockDevice: device.isBlockDevice, serial,
      onRequest, ...(image ? { image } : {}),
    });
    return new VhostUserBlkServer(h, o.socket, numQueues, readOnly);
  } catch (e) {
    throw fromNative(e, o.socket);
  }
}

// Runs the server's delegated requests (engine ops and flags: records.ts OP and FLAG) on a Qcow2Device.
function delegateTo(dev: Qcow2Device, handle: () => VhostUserBlkHandle | null):
  (id: number, op: number, offset: number, length: number, flags: number, parked: boolean) => void {
  const run = async (id: number, op: number, offset: number, length: number, flags: number): Promise<number> => {
    switch (op) {
      case OP.read: {
        const b = Buffer.allocUnsafe(length);
        const n = await dev.read(b, offset);
        if (n !== length) b.fill(0, n);
        handle()?.copyIn(id, b);
        return n === length ? n : -5;
      }
      case OP.write: {
        const b = Buffer.allocUnsafe(length);
        if (!handle()?.copyOut(id, b)) return -125;  // cancelled: the server is gone
        return dev.write(b, offset);
      }
      case OP.flush:
        await dev.flush({ tag: 'ordered' });
        return 0;
      case OP.discard:
        return dev.discard(offset, length);
      case OP.writeZeroes:
        return dev.writeZeroes(offset, length, { unmap: (flags & FLAG.unmap) !== 0 });
      default:
        return -95; // EOPNOTSUPP: the engine delegates no other op
    }
  };
  return (id, op, offset, length, flags, parked) => {
    if (parked) {
      // The server's engine parked it: the format layer resolves metadata,
      // the data then moves in place (or, for what it serves itself, through copy()).
      dev._resolve({
        op, offset, length, fua: (flags & FLAG.fua) !== 0,
        retry: () => handle()?.complete(id, 0, true),
        finish: (result: number) => handle()?.complete(id, result),
        copy: (b: Buffer, toRequest: boolean) => ((toRequest ? handle()?.copyIn(id, b) : handle()?.copyOut(id, b)) ? b.length : 0),
      });
      return;
    }
    run(id, op, offset, length, flags).then(
      (n) => handle()?.complete(id, n),
      (e: unknown) => {
        const errno = (e as { errno?: unknown }).errno;
        handle()?.complete(id, typeof errno === 'number' && errno > 0 ? -errno : -5);
      },
    );
  };
}
