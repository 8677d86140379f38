// A zero-length registered buffer never turns zero-length requests into
// fixed-buffer requests (which io_uring fails with EFAULT).
import { describe, expect, it } from 'vitest';

import { OP, type BlockDevice, type Ring } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

describe.each(['io_uring', 'libaio', 'threads', 'mmap'] as const)('%s', (engine) => {
  let ring: Ring;
  let dev: BlockDevice;
  withDevice({ ring: { engine }, open: { size: 65536 }, name: `${engine}.img` }, (f) => {
    ({ ring, dev } = f);
  });

  it('zero-length reads and writes after registerBuffers([Buffer.alloc(0)]) transfer 0 bytes', async () => {
    ring.raw.registerBuffers([Buffer.alloc(0), Buffer.alloc(4096)]);
    expect(await dev.read(Buffer.alloc(0), 0)).toBe(0);
    expect(await dev.write(Buffer.alloc(0), 0)).toBe(0);
    expect(await dev.read(new Uint8Array(0), 4096)).toBe(0);
    const results: number[] = [];
    const done = new Promise<void>((resolve) => {
      ring.raw.onComplete = (cq, n) => {
        for (let i = 0; i < n; i++) results.push(cq[i * 4 + 1]!);
        if (results.length === 3) resolve();
      };
    });
    ring.raw.prepare(0, 1, OP.read, dev, 0, 0, 0, 0);
    ring.raw.prepare(1, 2, OP.write, dev, 0, 0, 0, 0);
    ring.raw.prepare(2, 3, OP.read, dev, 1, 4096, 0, 0);
    ring.raw.submit(3);
    await done;
    expect(results).toEqual([0, 0, 0]);
  });
});
