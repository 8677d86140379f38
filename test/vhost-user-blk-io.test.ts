// vhost-user-blk data path from a host-side frontend (test/helpers/
// vhost-frontend.c): reads and writes land in the image in place, on every
// queue, with direct and indirect chains, guest memory in one region or two,
// with and without EVENT_IDX; flush, GET_ID, discard, write-zeroes, config,
// read-only, reconnect.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring, serveVhostUserBlk, type BlockDevice, type VhostUserBlkServer } from '../dist/lib/index.js';
import { Frontend, pattern } from './helpers/vhost-frontend';
import { tempDir } from './helpers/tmp';

const SIZE = 32 << 20;
const t = tempDir('blockring-vhost-io-');
let ring: Ring;
let dev: BlockDevice;
let server: VhostUserBlkServer;
const image = path.join(t.dir, 'disk.img');
const socket = path.join(t.dir, 'vhost.sock');

beforeAll(async () => {
  ring = new Ring();
  dev = await ring.open(image, { create: true, size: SIZE });
  server = serveVhostUserBlk(dev, { socket, numQueues: 2, serial: 'vhost-io-test' });
});

afterAll(async () => {
  await server.close();
  await dev.close();
  await ring.close();
  t.cleanup();
});

function imageBytes(off: number, len: number): Buffer {
  const fd = fs.openSync(image, 'r');
  try {
    const b = Buffer.alloc(len);
    fs.readSync(fd, b, 0, len, off);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

describe.each([
  ['direct chains, one region, EVENT_IDX', ['--queues', '2']],
  ['indirect chains, two regions', ['--queues', '2', '--indirect', '--split']],
  ['no EVENT_IDX', ['--queues', '2', '--no-event-idx']],
])('vhost-user-blk I/O: %s', (_name, args) => {
  it('writes land in the image in place and read back on both queues', async () => {
    const f = new Frontend(socket, args);
    const seed = Math.floor(Math.random() * 1e6);
    for (const [q, sector, bytes] of [[0, 0, 4096], [1, 2048, 65536], [0, 60000, 512 * 7], [1, 65535, 512]] as const) {
      expect(await f.cmd(`write ${q} ${sector} ${bytes} ${seed + sector}`)).toBe('status 0');
      expect(imageBytes(sector * 512, bytes).equals(pattern(sector * 512, bytes, seed + sector))).toBe(true);
      expect(await f.cmd(`read ${1 - q} ${sector} ${bytes} ${seed + sector}`)).toBe('status 0 match');
      expect(await f.cmd(`read ${q} ${sector} ${bytes} ${seed + sector + 1}`)).toBe('status 0 mismatch');
    }
    if (args.includes('--indirect')) {
      // Data split over several descriptors (and regions: sector 0 data is at 16 MiB, the split point is 32 MiB).
      expect(await f.cmd(`write 0 4096 131072 ${seed} 8`)).toBe('status 0');
      expect(imageBytes(4096 * 512, 131072).equals(pattern(4096 * 512, 131072, seed))).toBe(true);
      expect(await f.cmd(`read 1 4096 131072 ${seed} 5`)).toBe('status 0 match');
    }
    expect(await f.cmd('flush 0')).toBe('status 0');
    await f.quit();
  });
});

describe('vhost-user-blk commands', () => {
  it('GET_ID, config space, out-of-range and misaligned requests', async () => {
    const f = new Frontend(socket, ['--queues', '2']);
    expect(await f.cmd('getid 1')).toBe('status 0 vhost-io-test');
    expect(await f.cmd('config')).toBe(`capacity ${SIZE / 512} blk_size 512 seg_max 126 num_queues 2`);
    // Past the end, partly past the end, not a whole sector.
    expect(await f.cmd(`read 0 ${SIZE / 512} 512 1`)).toMatch(/^status 1 /);
    expect(await f.cmd(`write 0 ${SIZE / 512 - 1} 1024 1`)).toBe('status 1');
    expect(await f.cmd('write 0 0 100 1')).toBe('status 1');
    await f.quit();
  });

  it('discard and write-zeroes (with and without unmap) read back as zeros, in the image too', async () => {
    const f = new Frontend(socket);
    for (const [cmd, unmap] of [['discard', 0], ['wzeroes', 0], ['wzeroes', 1]] as const) {
      expect(await f.cmd(`write 0 1000 65536 5`)).toBe('status 0');
      expect(await f.cmd(`${cmd} 0 1008 64 ${unmap}`)).toBe('status 0');
      expect(await f.cmd('readzero 0 1008 32768')).toBe('status 0 zero');
      expect(imageBytes(1008 * 512, 32768).every((b) => b === 0)).toBe(true);
      expect(imageBytes(1000 * 512, 4096).equals(pattern(1000 * 512, 4096, 5))).toBe(true);
    }
    // Discard has no flags; unknown write-zeroes flags are unsupported.
    expect(await f.cmd('discard 0 0 8 1')).toBe('status 2');
    expect(await f.cmd('wzeroes 0 0 8 2')).toBe('status 2');
    expect(await f.cmd(`discard 0 ${SIZE / 512} 8 0`)).toBe('status 1');
    await f.quit();
  });

  it('serves a reconnecting frontend: state from the last one is gone, data stays', async () => {
    const a = new Frontend(socket);
    expect(await a.cmd('write 0 300 8192 77')).toBe('status 0');
    await a.quit();
    const b = new Frontend(socket);
    expect(await b.cmd('read 0 300 8192 77')).toBe('status 0 match');
    await b.quit();
    expect(server.stats.connections).toBeGreaterThanOrEqual(2);
  });
});

describe('vhost-user-blk read-only', () => {
  it('refuses writes, discards and write-zeroes; reads work', async () => {
    const ro = path.join(t.dir, 'ro.sock');
    fs.writeFileSync(path.join(t.dir, 'ro.img'), pattern(0, 1 << 20, 3));
    const d = await ring.open(path.join(t.dir, 'ro.img'), { readOnly: true });
    const s = serveVhostUserBlk(d, { socket: ro });
    try {
      expect(s.readOnly).toBe(true);
      const f = new Frontend(ro);
      expect(await f.cmd('read 0 16 4096 3')).toBe('status 0 match');
      expect(await f.cmd('write 0 16 4096 4')).toBe('status 1');
      expect(await f.cmd('discard 0 0 8 0')).toBe('status 1');
      expect(await f.cmd('read 0 16 4096 3')).toBe('status 0 match');
      await f.quit();
    } finally {
      await s.close();
      await d.close();
    }
    expect(fs.existsSync(ro)).toBe(false);
  });
});

describe('serveVhostUserBlk arguments', () => {
  it('checks its options before starting anything', () => {
    const bad: [unknown, string][] = [
      [{}, 'ERR_INVALID_ARG_TYPE'],
      [{ socket: '' }, 'ERR_INVALID_ARG_TYPE'],
      [{ socket: 'x'.repeat(200) }, 'ERR_OUT_OF_RANGE'],
      [{ socket: 's', numQueues: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ socket: 's', numQueues: 65 }, 'ERR_OUT_OF_RANGE'],
      [{ socket: 's', numQueues: '2' }, 'ERR_INVALID_ARG_TYPE'],
      [{ socket: 's', engine: 'spdk' }, 'ERR_INVALID_ARG_VALUE'],
      [{ socket: 's', serial: 'x'.repeat(21) }, 'ERR_OUT_OF_RANGE'],
      [{ socket: 's', readOnly: 1 }, 'ERR_INVALID_ARG_TYPE'],
      [{ socket: 's', numQueue: 2 }, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [o, code] of bad) {
      expect(() => serveVhostUserBlk(dev, o as never)).toThrow(expect.objectContaining({ code }));
    }
    expect(() => serveVhostUserBlk({} as never, { socket: 's' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('a socket path it cannot bind is a BlockIoError', () => {
    expect(() => serveVhostUserBlk(dev, { socket: path.join(t.dir, 'no', 'such', 'dir.sock') })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'bind' }),
    );
  });
});
