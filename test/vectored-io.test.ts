import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let ring: Ring;
let dev: BlockDevice;
let file: string;
withDevice({ ring: { depth: 16 }, open: { size: 1 << 20 }, name: 'img' }, (f) => {
  ({ ring, dev, file } = f);
});

it('writev gathers and readv scatters across buffers of mixed sizes and types', async () => {
  const parts = [Buffer.alloc(1, 1), Buffer.alloc(4095, 2), new Uint8Array(4096).fill(3), new Uint16Array(100).fill(0x0404)];
  expect(await dev.writev(parts, 8192)).toBe(1 + 4095 + 4096 + 200);
  const onDisk = fs.readFileSync(file).subarray(8192, 8192 + 8392);
  expect(onDisk[0]).toBe(1);
  expect(onDisk[1]).toBe(2);
  expect(onDisk[4096]).toBe(3);
  expect(onDisk[8192]).toBe(4);
  const a = Buffer.alloc(10);
  const b = new DataView(new ArrayBuffer(5000));
  const c = Buffer.alloc(3382);
  expect(await dev.readv([a, b, c], 8192)).toBe(8392);
  expect(Buffer.concat([a, Buffer.from(b.buffer), c]).equals(onDisk)).toBe(true);
});

it('readv at end of file returns the bytes that exist', async () => {
  const bufs = [Buffer.alloc(100), Buffer.alloc(100)];
  expect(await dev.readv(bufs, (1 << 20) - 150)).toBe(150);
  expect(await dev.readv(bufs, 1 << 20)).toBe(0);
});

it('readv/writev work inside a batch with many iovecs', async () => {
  const bufs = Array.from({ length: 300 }, (_, i) => Buffer.alloc(7, i & 0xff));
  const [w] = await ring.submit([{ op: 'writev', dev, buffers: bufs, offset: 3 }]);
  expect(w!.bytes).toBe(2100);
  const back = Array.from({ length: 300 }, () => Buffer.alloc(7));
  const [r] = await ring.submit([{ op: 'readv', dev, buffers: back, offset: 3 }]);
  expect(r!.bytes).toBe(2100);
  expect(Buffer.concat(back).equals(Buffer.concat(bufs))).toBe(true);
});

it('a request with more iovecs than IOV_MAX is split and completes as one', async () => {
  const n = 3000; // IOV_MAX is 1024
  const bufs = Array.from({ length: n }, (_, i) => Buffer.alloc(100, i % 251));
  expect(await dev.writev(bufs, 0)).toBe(n * 100);
  const back = Array.from({ length: n }, () => Buffer.alloc(100));
  expect(await dev.readv(back, 0)).toBe(n * 100);
  expect(Buffer.concat(back).equals(Buffer.concat(bufs))).toBe(true);
  expect(fs.readFileSync(file).subarray(0, n * 100).equals(Buffer.concat(bufs))).toBe(true);
});
