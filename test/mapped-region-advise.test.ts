import { describe, expect, it } from 'vitest';

import { BlockIoError, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

// madvise, mlock and mincore over a region's pages.
describe('mapped region: advise, lock, residency', () => {
  let dev: BlockDevice;
  const pages = 64;

  // A fresh sparse file: none of its pages are in the page cache yet.
  withDevice({ ring: { depth: 16 }, open: { size: pages * 4096 } }, (f) => {
    ({ dev } = f);
  });

  it('residency() reports the pages touched', () => {
    const region = dev.map();
    const before = region.residency();
    expect(before.pages).toBe(pages);
    expect(before.map.length).toBe(pages);
    expect(before.resident).toBe(0);
    const buf = region.buffer;
    for (let p = 0; p < pages; p += 2) buf[p * 4096] = 1;
    const after = region.residency();
    for (let p = 0; p < pages; p += 2) expect(after.map[p]).toBe(1);
    expect(after.resident).toBeGreaterThanOrEqual(pages / 2);
    region.unmap();
  });

  it('an unaligned region spans its enclosing pages', () => {
    const region = dev.map({ offset: 4095, length: 2 });
    expect(region.residency().pages).toBe(2);
    region.unmap();
  });

  it('lock() makes every page resident; unlock() succeeds', () => {
    const region = dev.map({ length: 16 * 4096 });
    region.lock();
    const r = region.residency();
    expect(r.resident).toBe(16);
    region.unlock();
    region.unmap();
  });

  it("advise('dontneed') drops a private mapping's copies; the others are accepted", () => {
    const region = dev.map({ mode: 'private' });
    for (const a of ['normal', 'random', 'sequential', 'willneed'] as const) region.advise(a);
    try {
      region.advise('hugepage');
    } catch (e) {
      // Kernels without transparent huge pages for this mapping refuse it.
      expect(e).toBeInstanceOf(BlockIoError);
      expect((e as BlockIoError).code).toBe('EINVAL');
    }
    region.buffer.fill(0x55, 0, 8192);
    expect(region.buffer[8191]).toBe(0x55);
    region.advise('dontneed');
    expect(region.buffer[8191]).toBe(0);
    expect(() => region.advise('forget' as never)).toThrow(TypeError);
    region.unmap();
  });
});
