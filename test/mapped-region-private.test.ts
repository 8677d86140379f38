import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

// mode 'private' is copy-on-write: writes land in private pages and the
// file is never modified, even when the device is open read-only.
describe('mapped region: private (copy-on-write) mapping', () => {
  let t: ReturnType<typeof tempDir>;
  let ring: Ring;
  let file: string;
  const original = Buffer.alloc(64 * 1024);
  for (let i = 0; i < original.length; i++) original[i] = (i * 13 + 5) & 0xff;

  beforeEach(() => {
    t = tempDir();
    file = path.join(t.dir, 'base.img');
    fs.writeFileSync(file, original);
    ring = new Ring({ depth: 16 });
  });
  afterEach(async () => {
    await ring.close();
    t.cleanup();
  });

  it('keeps writes private and leaves the file untouched', async () => {
    const dev = await ring.open(file);
    const cow = dev.map({ mode: 'private' });
    expect(cow.readOnly).toBe(false);
    cow.buffer.fill(0xff, 0, 32768);
    expect(cow.write(Buffer.from('private'), 40000)).toBe(7);
    const seen = Buffer.alloc(7);
    cow.read(seen, 40000);
    expect(seen.toString()).toBe('private');
    expect(cow.buffer[100]).toBe(0xff);
    await cow.sync();

    // Nobody else sees the private pages: not the device, a shared mapping, or node:fs.
    const r = Buffer.alloc(original.length);
    await dev.read(r, 0);
    expect(r.equals(original)).toBe(true);
    const shared = dev.map();
    expect(shared.buffer.equals(original)).toBe(true);
    expect(fs.readFileSync(file).equals(original)).toBe(true);
    cow.unmap();
    shared.unmap();
    expect(fs.readFileSync(file).equals(original)).toBe(true);
  });

  it('is writable over a read-only device; a shared one is not', async () => {
    const dev = await ring.open(file, { readOnly: true });
    expect(() => dev.map()).not.toThrow();
    expect(dev.map().readOnly).toBe(true);
    expect(() => dev.map({ readOnly: false })).toThrow(expect.objectContaining({ code: 'ERR_READ_ONLY' }));
    const ro = dev.map({ readOnly: true });
    expect(() => ro.write(Buffer.alloc(1), 0)).toThrow(expect.objectContaining({ code: 'ERR_READ_ONLY' }));
    const cow = dev.map({ mode: 'private' });
    cow.buffer.fill(0);
    expect(cow.buffer.every((b) => b === 0)).toBe(true);
    expect(ro.buffer.equals(original)).toBe(true);
    expect(fs.readFileSync(file).equals(original)).toBe(true);
  });
});
