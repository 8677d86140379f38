// A hostile vhost-user frontend: descriptors outside guest memory, loops,
// chains too long, malformed rings, truncated and malformed messages, a
// frontend vanishing with requests in flight, random descriptor tables.
// The backend answers with VIRTIO_BLK_S_IOERR, marks the queue broken or
// drops the connection; it never crashes, never leaks an fd, and serves the
// next frontend.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring, serveVhostUserBlk, type BlockDevice, type VhostUserBlkServer } from '../dist/lib/index.js';
import { Frontend, withFrontend } from './helpers/vhost-frontend';
import { tempDir } from './helpers/tmp';

const GPA_BASE = 0x40000000;
const MEM = 64 << 20;
const t = tempDir('blockring-vhost-hostile-');
let ring: Ring;
let dev: BlockDevice;
let server: VhostUserBlkServer;
let fdsBefore = 0;
const socket = path.join(t.dir, 'vhost.sock');
const openFds = () => fs.readdirSync('/proc/self/fd').length;

beforeAll(async () => {
  fdsBefore = openFds();
  ring = new Ring();
  dev = await ring.open(path.join(t.dir, 'disk.img'), { create: true, size: 8 << 20 });
  server = serveVhostUserBlk(dev, { socket, numQueues: 2 });
});

afterAll(async () => {
  await server.close();
  await dev.close();
  await ring.close();
  // Every fd a frontend passed (memory, kicks, calls) was closed with it.
  expect(openFds()).toBe(fdsBefore);
  t.cleanup();
});

/** The server still serves: a fresh frontend does real I/O. */
async function stillServes(): Promise<void> {
  await withFrontend(socket, [], async (f) => {
    expect(await f.cmd('write 0 8 4096 9')).toBe('status 0');
    expect(await f.cmd('read 0 8 4096 9')).toBe('status 0 match');
  });
}

const H = (n = 16, next = 1) => `H+0 ${n} 1 ${next}`;  // readable header, NEXT
const S = 'S+0 1 2 0';  // writable status byte, last

describe('hostile descriptors', () => {
  it('a data buffer outside guest memory gets IOERR; the queue goes on', async () => {
    await withFrontend(socket, ['--queues', '2'], async (f) => {
      for (const addr of ['0x1000', `${GPA_BASE + MEM - 100}`, '0xfffffffffffff000']) {
        // header, data (device-writable: a read into it), status
        expect(await f.cmd(`raw 0 0 3 ${H()} ${addr} 4096 3 2 ${S}`)).toBe('used 0 1 1');
      }
      expect(await f.cmd('read 0 8 4096 0')).toMatch(/^status 0 /);
    });
  });

  it('a status byte outside memory: completed with length 0, nothing written', async () => {
    await withFrontend(socket, [], async (f) => {
      expect(await f.cmd(`raw 0 0 2 ${H()} 0x10 1 2 0`)).toBe('used 0 0 255');
      expect(await f.cmd('read 0 8 4096 0')).toMatch(/^status 0 /);
    });
  });

  it('a header too short gets IOERR', async () => {
    await withFrontend(socket, [], async (f) => {
      expect(await f.cmd(`raw 0 0 2 ${H(8)} ${S}`)).toBe('used 0 1 1');
    });
  });

  it('an indirect table outside memory gets IOERR-less completion, the queue goes on', async () => {
    await withFrontend(socket, ['--indirect'], async (f) => {
      expect(await f.cmd('raw 0 0 1 0x10 48 4 0')).toBe('used 0 0 255');
      expect(await f.cmd('read 0 8 4096 0')).toMatch(/^status 0 /);
    });
  });

  it.each([
    ['a loop', [], 'raw 0 0 2 H+0 16 1 1 S+0 1 3 0'],
    ['a self loop', [], 'raw 0 0 1 H+0 16 1 0'],
    ['a readable buffer after a writable one', [], `raw 0 0 3 S+0 1 3 1 H+0 16 1 2 ${S}`],
    ['next out of range', [], `raw 0 0 2 H+0 16 1 9999 ${S}`],
    ['head out of range', [], `raw 0 4000 2 ${H()} ${S}`],
    ['nested indirect tables', ['itable 0 1 H+64 16 4 0'], 'raw 0 0 1 H+64 16 4 0'],
    ['a loop inside an indirect table', ['itable 0 2 H+0 16 1 1 S+0 1 3 0'], 'raw 0 0 1 H+64 32 4 0'],
    ['an indirect table of odd length', [`itable 0 2 ${H()} ${S}`], 'raw 0 0 1 H+64 24 4 0'],
    ['indirect with NEXT', [`itable 0 2 ${H()} ${S}`], `raw 0 0 2 H+64 32 5 1 ${S}`],
  ])('%s marks the queue broken; the other queue and the next frontend work', async (_n, prep, cmd) => {
    await withFrontend(socket, ['--queues', '2', '--indirect'], async (f) => {
      for (const p of prep) expect(await f.cmd(p)).toBe('ok');
      expect(await f.cmd(cmd)).toBe('timeout');
      expect(await f.cmd('ping')).toBe('alive 2');
      expect(await f.cmd('read 1 8 4096 0')).toMatch(/^status 0 /);
    });
    await stillServes();
  });

  it('a well-formed indirect chain works (the raw path is sound)', async () => {
    await withFrontend(socket, ['--indirect'], async (f) => {
      expect(await f.cmd(`itable 0 2 ${H()} ${S}`)).toBe('ok');
      expect(await f.cmd('raw 0 0 1 H+64 32 4 0')).toBe('used 0 1 0');
    });
  });

  it('a chain longer than the queue (every descriptor chained on) is a loop', async () => {
    await withFrontend(socket, ['--qsize', '8'], async (f) => {
      const descs = Array.from({ length: 8 }, (_, i) => `H+0 16 1 ${(i + 1) % 8}`).join(' ');
      expect(await f.cmd(`raw 0 0 8 ${descs}`)).toBe('timeout');
      expect(await f.cmd('ping')).toBe('alive 2');
    });
  });

  it('an avail index claiming more buffers than the ring holds', async () => {
    await withFrontend(socket, [], async (f) => {
      expect(await f.cmd('avail 0 5000')).toBe('ok');
      expect(await f.cmd('ping')).toBe('alive 2');
    });
    await stillServes();
  });
});

describe('hostile messages', () => {
  it.each([
    ['unknown request', 'msg 99 1 0'],
    ['payload larger than any message', 'msg 17 1 100000'],
    ['bad version', 'msg 17 2 0'],
    ['SET_MEM_TABLE without fds', 'msg 5 1 40 01000000000000000000004000000000000010000000000000000000000000000000000000000000'],
    ['SET_VRING_NUM not a power of two', 'msg 8 1 8 0000000003000000'],
    ['SET_VRING_ADDR for queue 200', 'msg 9 1 40 c8000000000000000000000000000000000000000000000000000000000000000000000000000000'],
    ['SET_VRING_KICK without its fd', 'msg 12 1 8 0000000000000000'],
    ['GET_CONFIG asking for 4000 bytes', 'msg 24 1 12 00000000a00f000000000000'],
    ['SET_FEATURES with bits never offered', 'msg 2 1 8 ffffffffffffffff'],
    ['a short SET_VRING_BASE', 'msg 10 1 2 0000'],
  ])('%s: connection dropped, server keeps serving', async (_n, cmd) => {
    await withFrontend(socket, [], async (f) => {
      expect(await f.cmd(cmd)).toBe('sent');
      expect(await f.cmd('ping')).toBe('dead');
    });
    await stillServes();
  });

  it('a truncated message (header, then silence) is dropped after a timeout', async () => {
    await withFrontend(socket, [], async (f) => {
      expect(await f.cmd('trunc')).toBe('sent');
      await new Promise((r) => setTimeout(r, 2500));
      expect(server.stats.connected).toBe(false);
    });
    await stillServes();
  });

  it('a frontend vanishing with writes in flight', async () => {
    for (let i = 0; i < 3; i++) {
      const f = new Frontend(socket, ['--queues', '2']);
      await f.cmd('burst 1 64 65536');
      await f.exited;
      await stillServes();
    }
  });
});

describe('random descriptor tables (fast-check)', () => {
  const addr = fc.oneof(
    fc.constant('H+0'), fc.constant('S+0'), fc.constant('H+64'),
    fc.integer({ min: 0, max: MEM - 1 }).map((o) => String(GPA_BASE + o)),
    fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }).map(String),
  );
  const desc = fc.tuple(addr, fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: 0xffffffff })),
    fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 12 }));
  it('never crash the backend or wedge the next frontend', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(desc, { minLength: 1, maxLength: 10 }), fc.integer({ min: 0, max: 12 }),
        fc.boolean(), async (descs, head, indirect) => {
          const list = descs.map((d) => d.join(' ')).join(' ');
          await withFrontend(socket, indirect ? ['--indirect', '--qsize', '16'] : ['--qsize', '16'], async (f) => {
            // The same descriptors in the indirect table too, so indirect heads find something.
            expect(await f.cmd(`itable 0 ${descs.length} ${list}`)).toBe('ok');
            const r = await f.cmd(`raw 0 ${head} ${descs.length} ${list}`);
            expect(r === 'timeout' || /^used \d+ \d+ \d+$/.test(r ?? '')).toBe(true);
            expect(await f.cmd('ping')).toBe('alive 2');
          });
        }),
      { numRuns: 40 },
    );
    await stillServes();
  }, 120_000);
});
