import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

import { Ring, type BlockDevice, type OpenOptions, type RingOptions } from '../../dist/lib/index.js';
import { tempDir } from './tmp';

export interface DeviceFixture {
  dir: string;
  file: string;
  ring: Ring;
  dev: BlockDevice;
}

/**
 * A ring with one device on a fresh file in a temp dir, made before each
 * test (or once, with scope 'all') and closed and removed after. `bind`
 * receives the fixture each time it is made.
 */
export function withDevice(
  options: { ring?: RingOptions; open?: OpenOptions; name?: string; scope?: 'each' | 'all' },
  bind: (f: DeviceFixture) => void,
): void {
  let t: ReturnType<typeof tempDir> | undefined;
  let ring: Ring | undefined;
  const each = (options.scope ?? 'each') === 'each';
  (each ? beforeEach : beforeAll)(async () => {
    t = tempDir();
    const file = path.join(t.dir, options.name ?? 'disk.img');
    ring = new Ring(options.ring ?? {});
    const dev = await ring.open(file, { create: true, ...options.open });
    bind({ dir: t.dir, file, ring, dev });
  });
  (each ? afterEach : afterAll)(async () => {
    await ring?.close();
    t?.cleanup();
  });
}
