import { describe, expect, it } from 'vitest';

import { type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

// After unmap() every buffer handed out is detached: touching it throws a
// TypeError (or sees zero length) instead of faulting on unmapped memory.
describe('mapped region: unmap', () => {
  let dev: BlockDevice;
  withDevice({ ring: { depth: 16 }, open: { size: 256 * 1024 } }, (f) => {
    ({ dev } = f);
  });

  it('detaches the buffer: access throws TypeError, no crash', () => {
    const region = dev.map();
    const buf = region.buffer;
    const ab = buf.buffer;
    const view = new Uint32Array(ab, 4096, 16);
    buf.fill(1);
    expect(region.unmapped).toBe(false);
    region.unmap();
    expect(region.unmapped).toBe(true);
    expect(buf.length).toBe(0);
    expect(ab.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(buf[0]).toBeUndefined();
    expect(() => buf.fill(2)).toThrow(TypeError);
    expect(() => buf.set([1, 2, 3])).toThrow(TypeError);
    expect(() => view.fill(2)).toThrow(TypeError);
    expect(() => new Uint8Array(ab)).toThrow(TypeError);
    expect(() => ab.slice(0)).toThrow(TypeError);
    region.unmap(); // idempotent
  });

  it('refuses every operation once unmapped', async () => {
    const region = dev.map();
    region.unmap();
    const unmapped = expect.objectContaining({ code: 'ERR_REGION_UNMAPPED' });
    expect(() => region.buffer).toThrow(unmapped);
    expect(() => region.read(Buffer.alloc(4), 0)).toThrow(unmapped);
    expect(() => region.write(Buffer.alloc(4), 0)).toThrow(unmapped);
    expect(() => region.advise('normal')).toThrow(unmapped);
    expect(() => region.lock()).toThrow(unmapped);
    expect(() => region.residency()).toThrow(unmapped);
    await expect(region.sync()).rejects.toMatchObject({ code: 'ERR_REGION_UNMAPPED' });
  });

  it('unmap during an msync waits for it before unmapping', async () => {
    const region = dev.map();
    region.buffer.fill(7);
    const pending = region.sync();
    region.unmap();
    await expect(pending).resolves.toBeUndefined();
    const r = Buffer.alloc(16);
    await dev.read(r, 1000);
    expect(r.every((b) => b === 7)).toBe(true);
  });

  it('survives the device closing', async () => {
    const region = dev.map({ length: 4096 });
    await dev.close();
    region.buffer.fill(9);
    expect(region.buffer[4095]).toBe(9);
    region.unmap();
  });
});
