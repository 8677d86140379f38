// Guards: close() with requests in flight (it waits for them; closed objects
// reject with stable codes), close() hanging after a refused request, and a
// resize racing close.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { fileTempDir } from './helpers/lifetime';

const t = fileTempDir();

it('close waits for in-flight requests, and closed objects reject with stable codes', async () => {
  const ring = new Ring({ depth: 4 });
  const dev = await ring.open(path.join(t.dir, 'close.img'), { create: true, size: 1 << 20 });
  const writes = Array.from({ length: 200 }, (_, i) => dev.write(Buffer.alloc(4096, 9), (i % 256) * 4096));
  const closed = dev.close();
  await expect(dev.read(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED', name: 'BlockringError' });
  await closed;
  expect((await Promise.all(writes)).every((n) => n === 4096)).toBe(true);
  expect(dev.closed).toBe(true);
  await expect(ring.submit([{ op: 'read', dev, buffer: Buffer.alloc(1), offset: 0 }])).rejects.toThrow(TypeError);
  const dev2 = await ring.open(path.join(t.dir, 'close.img'));
  const more = Array.from({ length: 100 }, (_, i) => dev2.read(Buffer.alloc(4096), i * 4096));
  await ring.close();
  expect((await Promise.all(more)).every((n) => n === 4096)).toBe(true);
  await expect(ring.open(path.join(t.dir, 'close.img'))).rejects.toMatchObject({ code: 'ERR_RING_CLOSED' });
  await expect(dev2.read(Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED' });
  await ring.close(); // idempotent
});

it('close() does not hang after a request was refused, and resize finishes before close', async () => {
  const ring = new Ring({ depth: 4 });
  const file = path.join(t.dir, 'refused.img');
  const dev = await ring.open(file, { create: true, size: 4096 });
  const refused = dev.write(Buffer.alloc(8192), 0).catch((e: unknown) => e);
  await dev.close();
  expect(await refused).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  const dev2 = await ring.open(file);
  const resized = dev2.resize(65536);
  await Promise.all([resized, dev2.close()]);
  expect(fs.statSync(file).size).toBe(65536);
  const dev3 = await ring.open(file);
  const closing = dev3.close();
  await expect(dev3.resize(4096)).rejects.toMatchObject({ code: 'ERR_DEVICE_CLOSED' });
  await closing;
  expect(fs.statSync(file).size).toBe(65536);
  await ring.close();
});
