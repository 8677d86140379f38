// vhost-user-blk on a qcow2 image: the format layer is JavaScript, so the
// server delegates each request to it (copying between guest memory and the
// format's buffers). Judged by qemu-img: check finds no errors, and the
// bytes qemu-img convert reads out are the ones the frontend wrote.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { Ring, serveVhostUserBlk } from '../dist/lib/index.js';
import { pattern, withFrontend } from './helpers/vhost-frontend';
import { toolEnv } from './helpers/qemu';
import { tempDir } from './helpers/tmp';

const t = tempDir('blockring-vhost-qcow2-');
afterAll(() => t.cleanup());

describe('vhost-user-blk serving a qcow2 image', () => {
  it('writes, reads, discard, write-zeroes and flush on 2 queues; qemu-img check and convert agree', async () => {
    const image = path.join(t.dir, 'disk.qcow2');
    const socket = path.join(t.dir, 'q.sock');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M'], { env: toolEnv() });
    const ring = new Ring();
    const dev = await ring.open(image, { format: 'qcow2' });
    const server = serveVhostUserBlk(dev, { socket, numQueues: 2 });
    try {
      await withFrontend(socket, ['--queues', '2', '--indirect'], async (f) => {
        expect(await f.cmd('config')).toBe(`capacity ${(16 << 20) / 512} blk_size 512 seg_max 126 num_queues 2`);
        expect(await f.cmd('write 0 0 65536 1 4')).toBe('status 0');
        expect(await f.cmd('write 1 2049 4096 2')).toBe('status 0');  // unaligned to clusters
        expect(await f.cmd('write 0 8192 131072 3 8')).toBe('status 0');
        expect(await f.cmd('read 1 0 65536 1 3')).toBe('status 0 match');
        expect(await f.cmd('read 0 2049 4096 2')).toBe('status 0 match');
        expect(await f.cmd('readzero 1 20000 8192')).toBe('status 0 zero');  // never written
        expect(await f.cmd('discard 0 8192 128 0')).toBe('status 0');
        expect(await f.cmd('wzeroes 1 8320 16 1')).toBe('status 0');
        expect(await f.cmd('readzero 0 8192 65536')).toBe('status 0 zero');
        expect(await f.cmd('flush 1')).toBe('status 0');
        expect(await f.cmd(`read 0 ${(16 << 20) / 512} 512 1`)).toMatch(/^status 1 /);
      });
    } finally {
      await server.close();
      await dev.close();
      await ring.close();
    }
    execFileSync('qemu-img', ['check', '-q', image], { env: toolEnv() });
    const raw = path.join(t.dir, 'out.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', image, raw], { env: toolEnv() });
    const b = fs.readFileSync(raw);
    expect(b.subarray(0, 65536).equals(pattern(0, 65536, 1))).toBe(true);
    expect(b.subarray(2049 * 512, 2049 * 512 + 4096).equals(pattern(2049 * 512, 4096, 2))).toBe(true);
    // Discarded 8192..8320, zeroed 8320..8336, the rest of the write at 8192 intact.
    expect(b.subarray(8192 * 512, 8336 * 512).every((x) => x === 0)).toBe(true);
    const tail = 8336 * 512;
    expect(b.subarray(tail, 8448 * 512).equals(pattern(tail, (8448 - 8336) * 512, 3))).toBe(true);
  });

  it('a frontend vanishing with qcow2 writes in flight; the server closes cleanly after', async () => {
    const image = path.join(t.dir, 'vanish.qcow2');
    const socket = path.join(t.dir, 'v.sock');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M'], { env: toolEnv() });
    const ring = new Ring();
    const dev = await ring.open(image, { format: 'qcow2' });
    const server = serveVhostUserBlk(dev, { socket, numQueues: 2 });
    try {
      await withFrontend(socket, ['--queues', '2'], async (f) => {
        await f.cmd('burst 1 64 65536');
      });
      await withFrontend(socket, [], async (f) => {
        expect(await f.cmd('write 0 8 4096 9')).toBe('status 0');
        expect(await f.cmd('read 0 8 4096 9')).toBe('status 0 match');
      });
    } finally {
      await server.close();
      await dev.close();
      await ring.close();
    }
    execFileSync('qemu-img', ['check', '-q', image], { env: toolEnv() });
  });
});
