import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

import { Ring, type BlockDevice, type OpenOptions, type Qcow2Device, type RingOptions } from '../../dist/lib/index.js';
import { tempDir } from './tmp';

export interface DeviceFixture<D = BlockDevice> {
  dir: string;
  file: string;
  ring: Ring;
  dev: D;
}

export interface DeviceFixtureOptions {
  ring?: RingOptions;
  open?: OpenOptions;
  name?: string;
  scope?: 'each' | 'all';
  /**
   * Makes the file (a pre-filled raw file, a qcow2 image) before it is
   * opened; the device is then opened with `open` alone, without the
   * `create: true` a fixture without `prepare` adds.
   */
  prepare?: (file: string, dir: string) => void | Promise<void>;
}

/**
 * A ring with one device on a file in a temp dir (a fresh one, or what
 * `prepare` makes), made before each test (or once, with scope 'all') and
 * closed and removed after. `bind` receives the fixture each time it is made.
 */
export function withDevice(
  options: DeviceFixtureOptions & { open: OpenOptions & { format: 'qcow2' } },
  bind: (f: DeviceFixture<Qcow2Device>) => void,
): void;
export function withDevice(options: DeviceFixtureOptions, bind: (f: DeviceFixture) => void): void;
export function withDevice(
  options: DeviceFixtureOptions,
  bind: (f: DeviceFixture<BlockDevice & Qcow2Device>) => void,
): void {
  let t: ReturnType<typeof tempDir> | undefined;
  let ring: Ring | undefined;
  const each = (options.scope ?? 'each') === 'each';
  (each ? beforeEach : beforeAll)(async () => {
    t = tempDir();
    const file = path.join(t.dir, options.name ?? 'disk.img');
    ring = new Ring(options.ring ?? {});
    if (options.prepare) await options.prepare(file, t.dir);
    const open = options.prepare ? options.open : { create: true, ...options.open };
    const dev = (await ring.open(file, open)) as BlockDevice & Qcow2Device;
    bind({ dir: t.dir, file, ring, dev });
  });
  (each ? afterEach : afterAll)(async () => {
    await ring?.close();
    t?.cleanup();
  });
}
