// Mapped copy-on-write for qcow2 over a raw base (README "Mapped
// copy-on-write"). One reserved virtual range covers the guest image:
// clusters allocated in the overlay map the overlay file MAP_SHARED,
// clusters still served by the base map the base file read-only (the same
// page-cache pages in every process), the rest read-only zero pages. The
// first write to a read-only cluster faults; native code (kernel/cow_fault)
// copies the cluster into a host cluster JS reserved beforehand (refcount
// already set, space already allocated), maps it in place and lets the
// store retry. JS learns of each copy-up here, in drain(), and writes the L2
// entry through the device (data first, then L2, as every other allocation).
import { BlockIoError, BlockringError, fromNative } from '../errors';
import { MappedRegion } from '../mapped-region';
import { native, type CowRegionHandle, type MappedRegionHandle } from '../native';
import { checkOptions, checkUint, rangeError } from '../validate';

const EAGAIN = 11;
const ENOSPC = 28;

export interface Qcow2MapOptions {
  /** Free host clusters kept reserved for write faults. Default 256. */
  reserve?: number;
}

/** What the mapping needs from its Qcow2Device (closures over its private state). */
export interface CowHost {
  readonly path: string;
  readonly size: number;
  readonly clusterSize: number;
  readonly readOnly: boolean;
  overlayFd(): number;
  /** The raw base's fd and size, or null without a backing file. */
  base(): { fd: number; size: number } | null;
  /** 'data' with its host offset, 'zero', 'unallocated'; anything else cannot be mapped. */
  lookup(vc: number): Promise<{ kind: string; host: number }>;
  /** Allocates every L2 table the image needs (before clusters are reserved behind them). */
  prepare(): Promise<void>;
  /** n host clusters with refcount 1 and their space allocated in the file. */
  reserve(n: number): Promise<number[]>;
  /** Drops the refcount of clusters reserve() handed out and nobody used. */
  release(hosts: number[]): Promise<void>;
  /** Points guest cluster vc at host (its data is already in the file). */
  adopt(vc: number, host: number): Promise<void>;
  /** Runs fn as a SIMPLE task of the device. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  flush(): Promise<void>;
}

const REFILL_MS = 100;

export class CowMap {
  readonly #host: CowHost;
  readonly #h: CowRegionHandle;
  readonly #capacity: number;
  readonly #writable: boolean;
  #chain: Promise<void> = Promise.resolve();
  #error: Error | null = null; // reported by the next region.sync()
  #timer: NodeJS.Timeout | null = null;
  #detached = false;
  #detaching = false;

  private constructor(host: CowHost, h: CowRegionHandle, capacity: number, writable: boolean) {
    this.#host = host;
    this.#h = h;
    this.#capacity = capacity;
    this.#writable = writable;
  }

  /** Builds the mapping (the caller holds the device ordered). */
  static async create(host: CowHost, options: Qcow2MapOptions | undefined): Promise<{ map: CowMap; region: MappedRegion }> {
    const o = checkOptions(options, 'options', ['reserve']);
    const capacity = o.reserve === undefined ? 256 : checkUint(o.reserve, 'options.reserve');
    if (capacity < 1 || capacity > 1 << 20) throw rangeError('ERR_OUT_OF_RANGE', 'options.reserve must be 1 to 2^20 clusters');
    const cs = host.clusterSize;
    if (cs < 4096 || cs % 4096) {
      throw new BlockringError('ERR_NOT_SUPPORTED', `'${host.path}': clusters of ${cs} bytes are smaller than a page: cannot be mapped`);
    }
    const base = host.base();
    let h: CowRegionHandle;
    try {
      h = new native.CowRegion(host.overlayFd(), host.size, cs, capacity);
    } catch (e) {
      throw fromNative(e, host.path);
    }
    const page = 4096;
    const span = Math.ceil(host.size / page) * page;
    const baseEnd = base ? Math.min(span, Math.ceil(base.size / page) * page) : 0;
    // Consecutive clusters of one kind (and contiguous hosts) map with one call.
    let run: { at: number; len: number; kind: 'data' | 'base' | 'zero'; host: number } | null = null;
    const emit = (): void => {
      if (!run) return;
      const r = run;
      run = null;
      try {
        if (r.kind === 'data') h.mapOverlay(r.at, r.len, r.host, !host.readOnly);
        else if (r.kind === 'zero') h.mapShared(r.at, r.len, -1);
        else {
          const inBase = Math.max(0, Math.min(r.len, baseEnd - r.at));
          if (inBase) h.mapShared(r.at, inBase, base!.fd);
          if (inBase < r.len) h.mapShared(r.at + inBase, r.len - inBase, -1);
        }
      } catch (e) {
        throw fromNative(e, host.path);
      }
    };
    const add = (at: number, len: number, kind: 'data' | 'base' | 'zero', hostOff: number): void => {
      if (run && run.kind === kind && run.at + run.len === at && (kind !== 'data' || run.host + run.len === hostOff)) {
        run.len += len;
        return;
      }
      emit();
      run = { at, len, kind, host: hostOff };
    };
    for (let vc = 0; vc * cs < span; vc++) {
      const at = vc * cs;
      const len = Math.min(cs, span - at);
      const m = await host.lookup(vc);
      if (m.kind === 'data') add(at, len, 'data', m.host);
      else if (m.kind === 'zero' || (m.kind === 'unallocated' && at >= baseEnd)) add(at, len, 'zero', 0);
      else if (m.kind === 'unallocated') add(at, len, 'base', 0);
      else throw new BlockringError('ERR_NOT_SUPPORTED', `'${host.path}': cluster ${vc} is ${m.kind}: cannot be mapped`);
    }
    emit();
    const writable = !host.readOnly;
    const map = new CowMap(host, h, capacity, writable);
    if (writable) {
      await host.prepare();
      await map.#refill();
      if (map.#error) {
        const e = map.#error;
        await map.detach();
        throw e;
      }
      h.arm(true);
      map.#timer = setInterval(() => void host.run(() => map.drain()).catch(() => undefined), REFILL_MS);
      map.#timer.unref();
    }
    const external = process.env.BLOCKRING_NO_EXTERNAL_BUFFERS !== '1';
    let inner: MappedRegionHandle;
    try {
      inner = new native.MappedRegion(h.newMapping(writable), external);
    } catch (e) {
      await map.detach();
      throw fromNative(e, host.path);
    }
    // The region's sync() and unmap() also drive the metadata.
    const handle: MappedRegionHandle = {
      get unmapped() { return inner.unmapped; },
      arrayBuffer: () => inner.arrayBuffer(),
      read: (t, off) => inner.read(t, off),
      write: (s, off) => {
        // Disarmed, a copy-up fault would be a plain SIGSEGV inside the copy.
        if (map.#detached && !inner.unmapped) {
          throw new BlockringError('ERR_DEVICE_CLOSED', `device '${host.path}' is closed: the region can no longer be written`);
        }
        return inner.write(s, off);
      },
      advise: (a) => inner.advise(a),
      lock: () => inner.lock(),
      unlock: () => inner.unlock(),
      residency: () => inner.residency(),
      sync: async (async) => {
        await inner.sync(async);
        if (!map.#detached) await map.#host.flush(); // drains first, like every device request
        const e = map.#error;
        map.#error = null;
        if (e) throw e;
      },
      unmap: () => {
        inner.unmap();
        void host.run(() => map.detach()).catch(() => undefined); // the next flush reports failures
      },
    };
    return { map, region: new MappedRegion(handle, host.path, 0, host.size, 'shared', !writable) };
  }

  get detached(): boolean {
    return this.#detached;
  }

  covers(vc: number): boolean {
    return !this.#detached && this.#writable && vc * this.#host.clusterSize < this.#host.size;
  }

  /**
   * Records finished copy-ups as L2 entries and tops up the pool. Every device
   * request runs this first, so it sees what stores through the mapping did.
   */
  drain(): Promise<void> {
    const next = this.#chain.then(() => this.#drainNow());
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #drainNow(): Promise<void> {
    if (this.#detached) return;
    const done = this.#h.drain();
    const unused: number[] = [];
    for (let i = 0; i < done.length; i += 3) {
      const vc = done[i]!;
      const host = done[i + 1]!;
      const err = done[i + 2]!;
      if (err) unused.push(host);
      else await this.#host.adopt(vc, host);
    }
    if (unused.length) await this.#host.release(unused);
    this.#noteNativeError();
    if (!this.#detaching && this.#h.available() < this.#capacity / 2) await this.#refill();
  }

  #noteNativeError(): void {
    const err = this.#h.takeError();
    if (err && !this.#error) {
      const errno = -err;
      this.#error = new BlockIoError({
        errno, syscall: errno === ENOSPC ? 'mmap' : 'pwrite', op: 'map', path: this.#host.path,
        message: errno === ENOSPC
          ? 'a write fault found no reserved cluster (options.reserve too small for the writes between two device calls)'
          : 'copying a cluster up into the overlay failed',
      });
    }
  }

  async #refill(): Promise<void> {
    const want = this.#capacity - this.#h.available();
    if (want <= 0) return;
    let hosts: number[];
    try {
      hosts = await this.#host.reserve(want);
    } catch (e) {
      this.#error ??= e as Error; // ENOSPC here: write faults may later find the pool empty
      return;
    }
    const took = this.#h.supply(Float64Array.from(hosts));
    if (took < hosts.length) await this.#host.release(hosts.slice(took));
  }

  /**
   * Dirty guest cluster vc is about to be written by the device: if the
   * mapping still shows the base there, copy it up now (as a fault would) so
   * both see one host cluster.
   */
  async beforeWrite(vc: number): Promise<void> {
    if (!this.covers(vc)) return;
    for (let tries = 0; ; tries++) {
      const r = this.#h.copyUp(vc);
      if (r === 0) break;
      if (r === -EAGAIN) {
        await new Promise((res) => setImmediate(res)); // a fault on another thread is copying it
      } else if (r === -ENOSPC && tries < 2) {
        this.#h.takeError(); // ours, reported here rather than at sync
        await this.#refill();
        if (this.#error) throw this.#error;
      } else {
        this.#h.takeError();
        throw new BlockIoError({ errno: -r, syscall: r === -ENOSPC ? 'mmap' : 'pwrite', op: 'write', path: this.#host.path,
          message: 'cannot copy the cluster up into the overlay' });
      }
    }
    await this.drain();
  }

  /**
   * Stops taking write faults (a first write to a shared cluster is then a
   * plain SIGSEGV), records the copy-ups done and returns unused clusters.
   */
  async detach(): Promise<void> {
    if (this.#detached || this.#detaching) return;
    this.#detaching = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#h.arm(false);
    await this.drain();
    this.#detached = true;
    const left = Array.from(this.#h.reclaim());
    if (left.length) await this.#host.release(left);
    this.#noteNativeError();
  }
}
