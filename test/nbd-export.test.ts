// `blockring nbd` judged by the real NBD clients: nbdinfo, qemu-io,
// qemu-img (convert, map, check) and nbdcopy, over a unix socket and TCP on
// 127.0.0.1, exporting a raw file, a loop block device and a qcow2 overlay.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { startNbd } from './helpers/nbd-cli';
import { check, qemuImg, qemuIo, run } from './helpers/qemu';
import { isRoot, skipUnless, tempDir } from './helpers/tmp';

const MiB = 1 << 20;
const t = tempDir('blockring-nbd-');
afterAll(() => t.cleanup());

function sparse(name: string, size: number): string {
  const p = path.join(t.dir, name);
  fs.writeFileSync(p, '');
  fs.truncateSync(p, size);
  return p;
}

function sha(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

describe.each(['unix', 'tcp'])('raw file over %s', (transport) => {
  const listen = (sock: string) => (transport === 'unix' ? ['--socket', sock] : ['--listen', '127.0.0.1:0']);

  it('nbdinfo shows size and flags; qemu-io patterns, write -z, discard, flush', async () => {
    const image = sparse(`io-${transport}.img`, 16 * MiB);
    const nbd = await startNbd([image, ...listen(path.join(t.dir, `io-${transport}.sock`)), '--name', 'disk0']);
    try {
      expect(nbd.uri).toMatch(transport === 'unix' ? /^nbd\+unix:\/\/\/disk0\?socket=/ : /^nbd:\/\/127\.0\.0\.1:\d+\/disk0$/);
      const info = JSON.parse(execFileSync('nbdinfo', ['--json', nbd.uri], { encoding: 'utf8' })) as {
        protocol: string; exports: Record<string, unknown>[];
      };
      const e = info.exports[0]!;
      expect(info.protocol).toBe('newstyle-fixed');
      expect(e['export-name']).toBe('disk0');
      expect(e['export-size']).toBe(16 * MiB);
      for (const flag of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_fast_zero', 'can_multi_conn', 'can_cache', 'can_df']) {
        expect(e[flag], flag).toBe(true);
      }
      expect(e.is_read_only).toBe(false);
      expect(e.contexts).toContain('base:allocation');
      expect(e.block_size_minimum).toBe(1);
      expect(e.block_size_maximum).toBe(32 * MiB);

      const io = qemuIo('-f', 'raw', nbd.uri,
        '-c', 'write -P 0xa5 0 1M', '-c', 'write -f -P 0x5a 1M 64k', '-c', 'write -P 0x77 3M 1M',
        '-c', 'write -z 3M 512k', '-c', 'discard 3584k 512k', '-c', 'flush',
        '-c', 'read -P 0xa5 0 1M', '-c', 'read -P 0x5a 1M 64k', '-c', 'read -P 0 3M 1M', '-c', 'read -P 0 8M 1M');
      expect(io.status, io.out).toBe(0);
      expect(io.out).not.toMatch(/Pattern verification failed|error|failed/i);
    } finally {
      expect(await nbd.stop()).toBe(0);
    }
    const data = fs.readFileSync(image);
    expect(data.subarray(0, MiB).every((b) => b === 0xa5)).toBe(true);
    expect(data.subarray(MiB, MiB + 65536).every((b) => b === 0x5a)).toBe(true);
    expect(data.subarray(3 * MiB, 4 * MiB).every((b) => b === 0)).toBe(true);
  });

  it('qemu-img convert to and from the export; nbdcopy --connections=4 both ways; map matches holes', async () => {
    const src = sparse(`src-${transport}.img`, 32 * MiB);
    const fd = fs.openSync(src, 'r+');
    for (const [off, len] of [[0, MiB], [5 * MiB, 3 * MiB], [20 * MiB + 4096, 65536], [31 * MiB, MiB]] as const) {
      fs.writeSync(fd, crypto.randomBytes(len), 0, len, off);
    }
    fs.closeSync(fd);
    const target = sparse(`target-${transport}.img`, 32 * MiB);
    const nbd = await startNbd([target, ...listen(path.join(t.dir, `cp-${transport}.sock`))]);
    try {
      const to = qemuImg('convert', '-n', '-f', 'raw', '-O', 'raw', src, nbd.uri);
      expect(to.status, to.out).toBe(0);
      const back = path.join(t.dir, `back-${transport}.img`);
      const from = qemuImg('convert', '-f', 'raw', '-O', 'raw', nbd.uri, back);
      expect(from.status, from.out).toBe(0);
      expect(sha(back)).toBe(sha(src));

      // qemu-img map through the export reports the target file's own holes.
      const map = (args: string[]) => (JSON.parse(qemuImg('map', '--output=json', '-f', 'raw', ...args).out) as
        { start: number; length: number; data: boolean; zero: boolean }[]).map((m) => ({ start: m.start, length: m.length, data: m.data, zero: m.zero }));
      const local = map([target]);
      expect(local.some((m) => !m.data)).toBe(true);
      expect(map([nbd.uri])).toEqual(local);

      const copied = path.join(t.dir, `nbdcopy-${transport}.img`);
      sparse(`nbdcopy-${transport}.img`, 32 * MiB);
      const out = run('nbdcopy', ['--connections=4', nbd.uri, copied]);
      expect(out.status, out.out).toBe(0);
      expect(sha(copied)).toBe(sha(src));
      const src2 = path.join(t.dir, `src2-${transport}.img`);
      fs.writeFileSync(src2, crypto.randomBytes(32 * MiB));
      const up = run('nbdcopy', ['--connections=4', src2, nbd.uri]);
      expect(up.status, up.out).toBe(0);
    } finally {
      expect(await nbd.stop()).toBe(0);
    }
    expect(sha(target)).toBe(sha(path.join(t.dir, `src2-${transport}.img`)));
  });
});

describe('exports', () => {
  it('read-only: writes refused with EPERM, reads served', async () => {
    const image = sparse('ro.img', 4 * MiB);
    fs.writeFileSync(image, Buffer.alloc(4 * MiB, 0x3c));
    const nbd = await startNbd([image, '--socket', path.join(t.dir, 'ro.sock'), '--read-only']);
    try {
      const info = JSON.parse(execFileSync('nbdinfo', ['--json', nbd.uri], { encoding: 'utf8' })) as { exports: Record<string, unknown>[] };
      expect(info.exports[0]!.is_read_only).toBe(true);
      expect(qemuIo('-f', 'raw', '-r', nbd.uri, '-c', 'read -P 0x3c 0 4M').status).toBe(0);
      const w = qemuIo('-f', 'raw', nbd.uri, '-c', 'write -P 1 0 4k');
      expect(w.out).toMatch(/Operation not permitted|read-only|Permission denied/i);
    } finally {
      expect(await nbd.stop()).toBe(0);
    }
    expect(fs.readFileSync(image).every((b) => b === 0x3c)).toBe(true);
  });

  it('a qcow2 overlay (writes land in the overlay, qemu-img check clean after, map shows backing)', async () => {
    const base = path.join(t.dir, 'base.img');
    fs.writeFileSync(base, Buffer.alloc(8 * MiB, 0x42));
    const overlay = path.join(t.dir, 'overlay.qcow2');
    expect(qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay).status).toBe(0);
    const nbd = await startNbd([overlay, '--format', 'qcow2', '--socket', path.join(t.dir, 'q.sock')]);
    try {
      const io = qemuIo('-f', 'raw', nbd.uri, '-c', 'write -P 0x99 1M 128k', '-c', 'write -z 4M 64k', '-c', 'flush',
        '-c', 'read -P 0x42 0 1M', '-c', 'read -P 0x99 1M 128k', '-c', 'read -P 0 4M 64k');
      expect(io.status, io.out).toBe(0);
      expect(io.out).not.toMatch(/Pattern verification failed/);
      const nbdMap = JSON.parse(qemuImg('map', '--output=json', '-f', 'raw', nbd.uri).out) as { start: number; data: boolean; zero: boolean }[];
      expect(nbdMap.find((m) => m.start === 4 * MiB)?.zero).toBe(true);
    } finally {
      expect(await nbd.stop()).toBe(0);
    }
    const c = check(overlay);
    expect(c.status, JSON.stringify(c.report)).toBe(0);
    expect(qemuIo('-f', 'qcow2', '-r', overlay, '-c', 'read -P 0x99 1M 128k', '-c', 'read -P 0x42 2M 1M').out).not.toMatch(/failed/);
    expect(fs.readFileSync(base).every((b) => b === 0x42)).toBe(true);
  });

  it.skipIf(skipUnless(isRoot, 'loop-device export needs root (losetup)'))('a loop block device', async () => {
    const backing = sparse('loop-backing.img', 16 * MiB);
    const loop = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
    try {
      const nbd = await startNbd([loop, '--socket', path.join(t.dir, 'loop.sock')]);
      try {
        const info = JSON.parse(execFileSync('nbdinfo', ['--json', nbd.uri], { encoding: 'utf8' })) as { exports: Record<string, unknown>[] };
        expect(info.exports[0]!['export-size']).toBe(16 * MiB);
        expect(info.exports[0]!.block_size_minimum).toBe(512);
        const io = qemuIo('-f', 'raw', nbd.uri, '-c', 'write -P 0x61 0 1M', '-c', 'write -z 1M 1M', '-c', 'discard 2M 1M',
          '-c', 'flush', '-c', 'read -P 0x61 0 1M', '-c', 'read -P 0 1M 1M');
        expect(io.status, io.out).toBe(0);
        expect(io.out).not.toMatch(/Pattern verification failed/);
        const copy = path.join(t.dir, 'loop-copy.img');
        expect(qemuImg('convert', '-f', 'raw', '-O', 'raw', nbd.uri, copy).status).toBe(0);
        expect(fs.readFileSync(copy).subarray(0, MiB).every((b) => b === 0x61)).toBe(true);
      } finally {
        expect(await nbd.stop()).toBe(0);
      }
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
    expect(fs.readFileSync(backing).subarray(0, MiB).every((b) => b === 0x61)).toBe(true);
  });
});
