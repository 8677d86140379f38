// unmap() while a request uses the region's memory: the buffer is detached at
// once, but the pages stay mapped until the request completes, so the kernel
// never writes into an address range that may already belong to a new mapping.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

// Mappings of `file` in this process, from /proc/self/maps.
const mappingsOf = (file: string): number => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith(file)).length;

it('unmap() with a read into region.buffer in flight keeps the pages until it completes', async () => {
  const file = path.join(t.dir, 'region.img');
  const data = path.join(t.dir, 'data.img');
  fs.writeFileSync(file, Buffer.alloc(1 << 20, 1));
  // The null engine holds the request for 300 ms without touching memory.
  const ring = new Ring({ engine: 'null', nullEngine: { latencyUs: 300_000 } });
  const src = await ring.open(data, { create: true, size: 1 << 20 });
  const owner = await ring.open(file);
  const region = owner.map();
  const pending = src.read(region.buffer, 0);
  await new Promise((r) => setImmediate(r)); // submitted
  expect(mappingsOf(file)).toBe(1);
  region.unmap();
  expect(region.unmapped).toBe(true);
  expect(mappingsOf(file)).toBe(1); // still mapped: the read uses it
  expect(await pending).toBe(1 << 20);
  expect(mappingsOf(file)).toBe(0);
  await ring.close();
});

it('unmap() of a region registered for raw requests waits until the table is replaced', async () => {
  const file = path.join(t.dir, 'registered.img');
  fs.writeFileSync(file, Buffer.alloc(65536, 2));
  const ring = new Ring({ engine: 'threads' });
  const dev = await ring.open(file);
  const region = dev.map();
  ring.raw.registerBuffers([region.buffer]);
  region.unmap();
  expect(mappingsOf(file)).toBe(1);
  ring.raw.registerBuffers([Buffer.alloc(16)]);
  expect(mappingsOf(file)).toBe(0);
  await ring.close();
});
