// The native binding's shape, declared once. Everything in lib/ talks to
// the addon through these types.
import path from 'node:path';

export interface DeviceInfo {
  handle: number;
  size: number;
  isBlockDevice: boolean;
  deviceReadOnly: boolean;
  logicalBlockSize: number;
  physicalBlockSize: number;
  dioMemAlign: number;
  dioOffsetAlign: number;
}

/** Null-engine options after lib/null-engine.ts checked them (op -1 = any; Infinity = unbounded). */
export interface NativeNullOptions {
  latencyMinUs: number;
  latencyMaxUs: number;
  seed: number;
  faults: { op: number; offsetStart: number; offsetEnd: number; count: number; errno: number }[];
}

export interface RingHandleOptions {
  engine: string;
  depth: number;
  trace: boolean;
  nullEngine?: NativeNullOptions;
  sq: Float64Array;
  cq: Float64Array;
  rawSq: Float64Array;
  rawCq: Float64Array;
  onComplete: (count: number, rawCount: number) => void;
}

export interface RingHandle {
  readonly engine: string;
  readonly depth: number;
  addDevice(fd: number, direct: boolean, readOnly: boolean): DeviceInfo;
  /** True when the fd was closed now; false when raw requests keep it open. */
  closeDevice(handle: number): boolean;
  submit(count: number, buffers: ArrayBufferView[]): void;
  submitRaw(count: number): number;
  registerBuffers(buffers: ArrayBufferView[], fixed: boolean): boolean;
  inflight(): number;
  close(): void;
}

export interface NativeBinding {
  RingHandle: new (options: RingHandleOptions) => RingHandle;
}

function load(): NativeBinding {
  // BLOCKRING_ADDON points at a specific build (the sanitizer build, say).
  const override = process.env.BLOCKRING_ADDON;
  if (override) return require(path.resolve(override)) as NativeBinding;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const build = require('node-gyp-build') as (dir: string) => unknown;
  return build(path.join(__dirname, '..', '..')) as NativeBinding;
}

export const native: NativeBinding = load();
