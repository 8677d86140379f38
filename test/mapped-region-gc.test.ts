import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

import { Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

const gc = (globalThis as { gc?: () => void }).gc;

function mapped(file: string): boolean {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => l.endsWith(` ${file}`));
}

// Finalizers run after the collection, on a later turn of the loop.
async function collectUntil(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 50 && !cond(); i++) {
    gc!();
    await tick();
  }
  return cond();
}

// An unreachable region (and its buffer) is unmapped by its finalizer; a
// buffer still reachable keeps the mapping alive after its region is gone.
describe.skipIf(!gc)('mapped region: GC unmaps', () => {
  let ring: Ring;
  let dev: BlockDevice;
  let file: string;
  withDevice({ ring: { depth: 16 }, open: { size: 1 << 20 }, name: 'gc.img' }, (f) => {
    ({ ring, dev, file } = f);
  });

  it('unmaps an unreachable region', async () => {
    (() => {
      const region = dev.map();
      region.buffer.fill(1);
    })();
    expect(mapped(file)).toBe(true);
    expect(await collectUntil(() => !mapped(file))).toBe(true);
  });

  it('keeps the pages while a buffer over them is reachable', async () => {
    let regionCollected = false;
    const registry = new FinalizationRegistry(() => {
      regionCollected = true;
    });
    let buf: Buffer | null = (() => {
      const region = dev.map();
      registry.register(region, null);
      return region.buffer;
    })();
    expect(await collectUntil(() => regionCollected)).toBe(true);
    expect(mapped(file)).toBe(true);
    buf!.fill(5);
    expect(buf![12345]).toBe(5);
    buf = null;
    expect(await collectUntil(() => !mapped(file))).toBe(true);
  });
});
