// A Linux guest (QEMU TCG, Debian cloud kernel, virtio_blk) on blockring's
// vhost-user-blk backend with 2 queues, on a raw and on a qcow2 image: O_DIRECT pattern write and read-back,
// a writer on each CPU (each queue), fio with crc32c verify, blkdiscard,
// flush; the host checks the image afterwards. Then the backend is killed and
// restarted under a QEMU with reconnect=1 and the guest's I/O resumes.
// Slow under the sanitizer build (TCG boots): scripts/sanitize.sh skips it.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring, serveVhostUserBlk } from '../dist/lib/index.js';
import { bootGuest, guestKit, guestUnavailable, initrdWith, type GuestKit } from './helpers/guest';
import { toolEnv } from './helpers/qemu';
import { tempDir } from './helpers/tmp';

const CLI = path.join(__dirname, '..', 'dist', 'lib', 'cli', 'main.js');
const MiB = 1 << 20;
const t = tempDir('blockring-vhost-guest-');
const why = guestUnavailable();
let kit: GuestKit;

beforeAll(() => {
  if (!why) kit = guestKit();
}, 300_000);
afterAll(() => t.cleanup());

const PATTERN = crypto.randomBytes(MiB);
const PATTERN2 = crypto.randomBytes(MiB);

function region(image: string, off: number, len: number): Buffer {
  const fd = fs.openSync(image, 'r');
  const b = Buffer.alloc(len);
  fs.readSync(fd, b, 0, len, off);
  fs.closeSync(fd);
  return b;
}

const IO_SCRIPT = `
echo "QUEUES $(ls /sys/block/vda/mq | wc -l)"
dd if=/pattern of=/dev/vda bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null
dd if=/dev/vda of=/back bs=64k skip=16 count=16 iflag=direct 2>/dev/null
cmp /pattern /back && echo DIRECT-OK
taskset 1 dd if=/pattern of=/dev/vda bs=4k seek=1024 oflag=direct 2>/dev/null &
taskset 2 dd if=/pattern of=/dev/vda bs=4k seek=2048 oflag=direct 2>/dev/null &
wait
fio --name=verify --filename=/dev/vda --direct=1 --ioengine=libaio --iodepth=16 --rw=randwrite --bs=4k \\
  --offset=16m --size=4m --numjobs=2 --offset_increment=4m --verify=crc32c --verify_fatal=1 >/tmp/fio.log 2>&1 \\
  && echo FIO-OK || tail -20 /tmp/fio.log
dd if=/pattern of=/dev/vda bs=64k seek=512 oflag=direct 2>/dev/null
blkdiscard -o 33554432 -l 1048576 /dev/vda && echo DISCARD-OK
dd if=/dev/vda of=/z bs=64k skip=512 count=16 iflag=direct 2>/dev/null
dd if=/dev/zero of=/zz bs=64k count=16 2>/dev/null
cmp /z /zz && echo ZERO-OK
blockdev --flushbufs /dev/vda && sync && echo FLUSH-OK
`;

describe.skipIf(why !== null)('a QEMU guest on vhost-user-blk', () => {
  if (why) console.log(`skipped: ${why}`);

  it.each(['raw', 'qcow2'] as const)('%s image, 2 queues: O_DIRECT, both queues, fio crc32c verify, blkdiscard, flush', async (format) => {
    const image = path.join(t.dir, `disk.${format}`);
    const socket = path.join(t.dir, `${format}.sock`);
    if (format === 'qcow2') {
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M'], { env: toolEnv() });
    } else {
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 64 * MiB);
    }
    const ring = new Ring();
    const dev = format === 'qcow2' ? await ring.open(image, { format: 'qcow2' }) : await ring.open(image);
    const server = serveVhostUserBlk(dev, { socket, numQueues: 2 });
    const initrd = initrdWith(kit, t.dir, { 'test.sh': IO_SCRIPT, pattern: PATTERN });
    const guest = bootGuest(kit, initrd, socket, { queues: 2 });
    try {
      await guest.waitFor(/GUEST-EXIT \d+/, 150_000);
      const out = guest.output();
      for (const mark of ['QUEUES 2', 'DIRECT-OK', 'FIO-OK', 'DISCARD-OK', 'ZERO-OK', 'FLUSH-OK']) {
        expect(out, out.slice(-3000)).toContain(mark);
      }
      await guest.exited;
      // qcow2 too: every guest byte moved in place (no compressed clusters here).
      expect(server.stats.served).toBeGreaterThan(1000);
      expect(server.stats.copied).toBe(0);
    } finally {
      guest.child.kill('SIGKILL');
      await server.close();
      await dev.close();
      await ring.close();
    }
    let raw = image;
    if (format === 'qcow2') {
      execFileSync('qemu-img', ['check', '-q', image], { env: toolEnv() });
      raw = path.join(t.dir, 'qcow2-as-raw.img');
      execFileSync('qemu-img', ['convert', '-O', 'raw', image, raw], { env: toolEnv() });
    }
    expect(region(raw, MiB, MiB).equals(PATTERN)).toBe(true);
    expect(region(raw, 4 * MiB, MiB).equals(PATTERN)).toBe(true);
    expect(region(raw, 8 * MiB, MiB).equals(PATTERN)).toBe(true);
    expect(region(raw, 32 * MiB, MiB).every((b) => b === 0)).toBe(true);
  }, 300_000);

  it('the backend killed and restarted under a reconnecting QEMU: I/O resumes', async () => {
    const image = path.join(t.dir, 'reconnect.img');
    const socket = path.join(t.dir, 'reconnect.sock');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 64 * MiB);
    const start = () => {
      const c = spawn(process.execPath, [CLI, 'vhost-user-blk', image, '--socket', socket, '--num-queues', '2'],
        { stdio: 'ignore' });
      return c;
    };
    let backend = start();
    const script = `
dd if=/pattern of=/dev/vda bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null && echo PHASE1
sleep 1
dd if=/pattern2 of=/dev/vda bs=64k seek=48 oflag=direct conv=fsync 2>/dev/null && echo PHASE2-WRITE-OK
dd if=/dev/vda of=/back bs=64k skip=16 count=16 iflag=direct 2>/dev/null
cmp /pattern /back && echo PHASE2-READ-OK
`;
    const initrd = initrdWith(kit, t.dir, { 'test.sh': script, pattern: PATTERN, pattern2: PATTERN2 });
    // Wait for the socket so QEMU's first connect finds it.
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    const guest = bootGuest(kit, initrd, socket, { queues: 2, reconnect: true });
    try {
      await guest.waitFor(/PHASE1/, 120_000);
      backend.kill('SIGKILL');
      await new Promise((r) => backend.on('exit', r));
      // The guest's next writes wait while no backend is there.
      await new Promise((r) => setTimeout(r, 1500));
      backend = start();
      await guest.waitFor(/GUEST-EXIT \d+/, 120_000);
      const out = guest.output();
      expect(out, out.slice(-3000)).toContain('PHASE2-WRITE-OK');
      expect(out, out.slice(-3000)).toContain('PHASE2-READ-OK');
    } finally {
      guest.child.kill('SIGKILL');
      backend.kill('SIGTERM');
      await new Promise((r) => backend.on('exit', r));
    }
    expect(region(image, MiB, MiB).equals(PATTERN)).toBe(true);
    expect(region(image, 3 * MiB, MiB).equals(PATTERN2)).toBe(true);
  }, 300_000);
});
