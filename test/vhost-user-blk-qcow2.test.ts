// vhost-user-blk on a qcow2 image: reads and writes run on the server's
// engine in guest memory, split by the image's native cluster map; the
// format layer (JavaScript) resolves only what the map does not know
// (metadata, allocation, flush, discard). Judged by qemu-img: check finds
// no errors, and the bytes qemu-img convert reads out are the ones the
// frontend wrote; stats.copied says no guest byte went through a buffer.
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

  it('data moves in place: 0 bytes copied for reads and writes on allocated and new clusters; compressed ones are copied', async () => {
    const image = path.join(t.dir, 'inplace.qcow2');
    const socket = path.join(t.dir, 'i.sock');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M'], { env: toolEnv() });
    // Clusters 0..15 allocated (0xaa), cluster 64 compressed (0xcc).
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xaa 0 1M', '-c', 'write -c -P 0xcc 4M 64k', image], { env: toolEnv() });
    const ring = new Ring();
    const dev = await ring.open(image, { format: 'qcow2' });
    const server = serveVhostUserBlk(dev, { socket, numQueues: 2 });
    try {
      await withFrontend(socket, ['--queues', '2', '--indirect'], async (f) => {
        expect(await f.cmd('write 0 8 8192 5')).toBe('status 0');         // allocated clusters
        expect(await f.cmd('write 1 4096 65536 6 4')).toBe('status 0');    // new clusters (2 MiB)
        expect(await f.cmd('write 0 6000 4096 7')).toBe('status 0');       // new, unaligned to clusters
        expect(await f.cmd('read 1 8 8192 5')).toBe('status 0 match');
        expect(await f.cmd('read 0 4096 65536 6 4')).toBe('status 0 match');
        expect(await f.cmd('read 1 6000 4096 7')).toBe('status 0 match');
        expect(await f.cmd('readzero 0 12000 8192')).toBe('status 0 zero'); // never written
        expect(await f.cmd('flush 0')).toBe('status 0');
        expect(server.stats.served).toBeGreaterThanOrEqual(7); // 8 sent; the count is published after each epoll pass
        expect(server.stats.copied).toBe(0);
        // A compressed cluster is served by the format layer through one bounce copy.
        expect(await f.cmd('read 1 8192 4096 0')).toMatch(/^status 0/);
        expect(server.stats.copied).toBe(4096);
      });
    } finally {
      await server.close();
      await dev.close();
      await ring.close();
    }
    execFileSync('qemu-img', ['check', '-q', image], { env: toolEnv() });
    const raw = path.join(t.dir, 'inplace.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', image, raw], { env: toolEnv() });
    const b = fs.readFileSync(raw);
    expect(b.subarray(8 * 512, 8 * 512 + 8192).equals(pattern(8 * 512, 8192, 5))).toBe(true);
    expect(b.subarray(0, 8 * 512).every((x) => x === 0xaa)).toBe(true);
    expect(b.subarray(4096 * 512, 4096 * 512 + 65536).equals(pattern(4096 * 512, 65536, 6))).toBe(true);
    expect(b.subarray(6000 * 512, 6000 * 512 + 4096).equals(pattern(6000 * 512, 4096, 7))).toBe(true);
    expect(b.subarray(8192 * 512, 8192 * 512 + 65536).every((x) => x === 0xcc)).toBe(true);
  });

  it('the image closed while the server runs: requests fail with IOERR, nothing hangs or crashes', async () => {
    const image = path.join(t.dir, 'closed.qcow2');
    const socket = path.join(t.dir, 'c.sock');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M'], { env: toolEnv() });
    const ring = new Ring();
    const dev = await ring.open(image, { format: 'qcow2' });
    const server = serveVhostUserBlk(dev, { socket });
    try {
      await withFrontend(socket, [], async (f) => {
        expect(await f.cmd('write 0 0 4096 3')).toBe('status 0');
        await dev.close();
        expect(await f.cmd('read 0 0 4096 3')).toMatch(/^status 1/);
        expect(await f.cmd('write 0 0 4096 4')).toMatch(/^status 1/);
      });
    } finally {
      await server.close();
      await dev.close();
      await ring.close();
    }
    execFileSync('qemu-img', ['check', '-q', image], { env: toolEnv() });
  });
});
