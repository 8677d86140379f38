// qcow2 interop with the real QEMU tools, both ways: images qemu-img and
// qemu-io write are read by blockring; images and chains blockring writes
// pass qemu-img check and compare equal to what was written.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createImage, Ring } from '../dist/lib/index.js';
import { check, expectCheckClean, expectSameAsRaw, qemuImg, qemuIo } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
let ring: Ring;
beforeAll(() => {
  t = tempDir();
  ring = new Ring({ depth: 64 });
});
afterAll(async () => {
  await ring.close();
  t.cleanup();
});
const p = (name: string): string => path.join(t.dir, name);

function patterned(size: number, seed: number): Buffer {
  const rand = rng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  return b;
}

/** The guest view of an image as qemu-img sees it (converted to raw). */
function qemuRaw(image: string, format = 'qcow2'): Buffer {
  const out = p(`conv-${path.basename(image)}.raw`);
  fs.rmSync(out, { force: true });
  execFileSync('qemu-img', ['convert', '-f', format, '-O', 'raw', image, out]);
  const b = fs.readFileSync(out);
  fs.rmSync(out);
  return b;
}

describe('qemu writes, blockring reads', () => {
  it('reads data, zero clusters and discarded ranges qemu-io wrote, over a raw backing', async () => {
    fs.writeFileSync(p('b1.raw'), Buffer.alloc(8 << 20, 0xaa));
    expect(qemuImg('create', '-f', 'qcow2', '-b', p('b1.raw'), '-F', 'raw', p('o1.qcow2')).status).toBe(0);
    const io = qemuIo('-f', 'qcow2', '-c', 'write -P 0x11 100000 300000', '-c', 'write -z 1M 128k',
      '-c', 'write -P 0x22 2M 64k', '-c', 'discard 2M 64k', '-c', 'write -P 0x33 8388000 192', p('o1.qcow2'));
    expect(io.status).toBe(0);
    const dev = await ring.open(p('o1.qcow2'), { format: 'qcow2', readOnly: true });
    expect(dev.format).toBe('qcow2');
    expect(dev.backing?.format).toBe('raw');
    const got = Buffer.alloc(dev.size);
    expect(await dev.read(got, 0)).toBe(8 << 20);
    expect(got.equals(qemuRaw(p('o1.qcow2')))).toBe(true);
    // A zero cluster hides the backing's 0xaa.
    expect(got.subarray(1 << 20, (1 << 20) + (128 << 10)).every((x) => x === 0)).toBe(true);
    const ext = await dev.allocation(0, dev.size);
    expect(ext[0]).toEqual({ offset: 0, length: 65536, type: 'backing' });
    expect(ext.find((e) => e.offset === 1 << 20)).toEqual({ offset: 1 << 20, length: 128 << 10, type: 'zero' });
    expect(ext.reduce((n, e) => n + e.length, 0)).toBe(dev.size);
    for (let i = 1; i < ext.length; i++) expect(ext[i]!.offset).toBe(ext[i - 1]!.offset + ext[i - 1]!.length);
    await dev.close();
  });

  it('reads an image from qemu-img convert -c (compressed clusters) and rewrites them as normal clusters', async () => {
    const src = patterned(4 << 20, 7);
    src.fill(0x5a, 1 << 20, 2 << 20); // compressible
    fs.writeFileSync(p('c.raw'), src);
    expect(qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', p('c.raw'), p('c.qcow2')).status).toBe(0);
    const dev = await ring.open(p('c.qcow2'), { format: 'qcow2' });
    const got = Buffer.alloc(src.length);
    await dev.read(got, 0);
    expect(got.equals(src)).toBe(true);
    const patch = Buffer.alloc(1000, 0x77);
    await dev.write(patch, (1 << 20) + 5000);
    patch.copy(src, (1 << 20) + 5000);
    await dev.close();
    expectCheckClean(p('c.qcow2'));
    expect(qemuRaw(p('c.qcow2')).equals(src)).toBe(true);
  });

  it('reads extended L2 (subcluster) images, read-only', async () => {
    fs.writeFileSync(p('b2.raw'), Buffer.alloc(4 << 20, 0xaa));
    expect(qemuImg('create', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=64k', '-b', p('b2.raw'), '-F', 'raw', p('x.qcow2')).status).toBe(0);
    expect(qemuIo('-f', 'qcow2', '-c', 'write -P 0x11 2048 2048', '-c', 'write -z 70000 4000', '-c', 'write -P 0x22 1M 100', p('x.qcow2')).status).toBe(0);
    const dev = await ring.open(p('x.qcow2'), { format: 'qcow2' });
    expect(dev.readOnly).toBe(true);
    const got = Buffer.alloc(dev.size);
    await dev.read(got, 0);
    expect(got.equals(qemuRaw(p('x.qcow2')))).toBe(true);
    await dev.close();
  });

  it('repairs the refcounts of an image left dirty with lazy refcounts', async () => {
    expect(qemuImg('create', '-f', 'qcow2', '-o', 'lazy_refcounts=on', p('d.qcow2'), '4M').status).toBe(0);
    // abort: qemu-io exits without clearing the dirty bit or writing refcounts.
    qemuIo('-f', 'qcow2', '-c', 'write -P 0x44 0 256k', '-c', 'write -P 0x45 3M 64k', '-c', 'abort', p('d.qcow2'));
    const before = check(p('d.qcow2'));
    expect(before.status).not.toBe(0);
    const dev = await ring.open(p('d.qcow2'), { format: 'qcow2' });
    const b = Buffer.alloc(256 << 10);
    await dev.read(b, 0);
    expect(b.every((x) => x === 0x44)).toBe(true);
    await dev.close();
    expectCheckClean(p('d.qcow2'));
    expect(qemuImg('info', p('d.qcow2')).out).not.toMatch(/corrupt: true/);
  });
});

describe('blockring writes, qemu checks', () => {
  it('builds a qcow2-on-qcow2 chain with createImage that passes qemu-img info, check and compare', async () => {
    await createImage(p('base.qcow2'), { format: 'qcow2', size: 16 << 20 });
    const base = await ring.open(p('base.qcow2'), { format: 'qcow2' });
    const shadow = patterned(16 << 20, 3);
    shadow.fill(0, 6 << 20, 10 << 20);
    await base.write(shadow.subarray(0, 6 << 20), 0);
    await base.write(shadow.subarray(10 << 20), 10 << 20);
    await base.close();
    await createImage(p('top.qcow2'), { format: 'qcow2', backing: 'base.qcow2', backingFormat: 'qcow2' });
    const top = await ring.open(p('top.qcow2'), { format: 'qcow2' });
    expect(top.size).toBe(16 << 20);
    expect(top.backing?.format).toBe('qcow2');
    const w = patterned(3 << 20, 4);
    await top.write(w.subarray(0, 777), 12345);
    w.subarray(0, 777).copy(shadow, 12345);
    await top.write(w, 5 << 20);
    w.copy(shadow, 5 << 20);
    await top.writeZeroes(1 << 20, 1 << 20);
    shadow.fill(0, 1 << 20, 2 << 20);
    await top.discard(14 << 20, 65536 + 100);
    shadow.fill(0, 14 << 20, (14 << 20) + 65536 + 100);
    const got = Buffer.alloc(16 << 20);
    await top.read(got, 0);
    expect(got.equals(shadow)).toBe(true);
    await top.close();
    const info = qemuImg('info', '--backing-chain', '--output=json', p('top.qcow2'));
    expect(info.status).toBe(0);
    const chain = JSON.parse(info.out) as Array<{ format: string; 'backing-filename-format'?: string }>;
    expect(chain.map((c) => c.format)).toEqual(['qcow2', 'qcow2']);
    expect(chain[0]!['backing-filename-format']).toBe('qcow2');
    expectCheckClean(p('base.qcow2'));
    expectCheckClean(p('top.qcow2'));
    fs.writeFileSync(p('shadow.raw'), shadow);
    expectSameAsRaw(p('top.qcow2'), p('shadow.raw'));
  });

  for (const cs of [512, 4096, 2 << 20]) {
    it(`writes an image with ${cs}-byte clusters that qemu-img accepts`, async () => {
      const img = p(`cs${cs}.qcow2`);
      await createImage(img, { format: 'qcow2', size: 8 << 20, clusterSize: cs });
      expect(qemuImg('info', img).out).toContain(`cluster_size: ${cs}`);
      const dev = await ring.open(img, { format: 'qcow2', cacheSize: 16 * cs });
      const shadow = Buffer.alloc(8 << 20);
      const rand = rng(cs);
      for (let i = 0; i < 200; i++) {
        const len = 1 + Math.floor(rand() * 40000);
        const off = Math.floor(rand() * ((8 << 20) - len));
        const b = patterned(len, i);
        await dev.write(b, off);
        b.copy(shadow, off);
      }
      await dev.close();
      expectCheckClean(img);
      expect(qemuRaw(img).equals(shadow)).toBe(true);
    });
  }

  it('writes version 2 (compat 0.10) overlays: writeZeroes and discard hide the backing with real zeros', async () => {
    fs.writeFileSync(p('b3.raw'), Buffer.alloc(2 << 20, 0xaa));
    await createImage(p('v2.qcow2'), { format: 'qcow2', version: 2, backing: 'b3.raw', backingFormat: 'raw' });
    expect(qemuImg('info', p('v2.qcow2')).out).toContain('compat: 0.10');
    const dev = await ring.open(p('v2.qcow2'), { format: 'qcow2' });
    expect(dev.version).toBe(2);
    await dev.writeZeroes(0, 65536);
    await dev.discard(65536 * 3, 65536 * 2 + 7);
    await dev.write(Buffer.alloc(10, 1), 1 << 20);
    await dev.close();
    expectCheckClean(p('v2.qcow2'));
    const want = Buffer.alloc(2 << 20, 0xaa);
    want.fill(0, 0, 65536);
    want.fill(0, 65536 * 3, 65536 * 5 + 7);
    want.fill(1, 1 << 20, (1 << 20) + 10);
    expect(qemuRaw(p('v2.qcow2')).equals(want)).toBe(true);
  });

  it('grows the L1 table on resize', async () => {
    await createImage(p('r.qcow2'), { format: 'qcow2', size: 1 << 20, clusterSize: 512 });
    const dev = await ring.open(p('r.qcow2'), { format: 'qcow2' });
    await dev.write(Buffer.alloc(512, 3), 4096);
    await dev.resize(64 << 20);
    expect(dev.size).toBe(64 << 20);
    await dev.write(Buffer.alloc(512, 9), (64 << 20) - 512);
    await dev.close();
    expectCheckClean(p('r.qcow2'));
    expect(qemuImg('info', p('r.qcow2')).out).toContain('virtual size: 64 MiB');
    const io = qemuIo('-f', 'qcow2', '-c', 'read -P 3 4096 512', '-c', `read -P 9 ${(64 << 20) - 512} 512`, p('r.qcow2'));
    expect(io.out).not.toContain('Pattern verification failed');
  });

  it('makes images with the CLI: blockring create IMAGE --format qcow2 [--size] [--backing --backing-format]', () => {
    const cli = path.join(__dirname, '..', 'dist', 'lib', 'cli', 'main.js');
    execFileSync(process.execPath, [cli, 'create', p('cli-base.qcow2'), '--format', 'qcow2', '--size', '3M']);
    execFileSync(process.execPath, [cli, 'create', p('cli-top.qcow2'), '--format', 'qcow2', '--backing', p('cli-base.qcow2'), '--backing-format', 'qcow2']);
    const info = JSON.parse(qemuImg('info', '--output=json', p('cli-top.qcow2')).out) as Record<string, unknown>;
    expect(info['virtual-size']).toBe(3 << 20);
    expect(info['backing-filename-format']).toBe('qcow2');
    expectCheckClean(p('cli-top.qcow2'));
  });
});

describe('refusals', () => {
  it('never probes: a raw file holding a qcow2 header opens as raw', async () => {
    await createImage(p('fake.qcow2'), { format: 'qcow2', size: 1 << 20, backing: '/etc/hostname', backingFormat: 'raw' });
    const dev = await ring.open(p('fake.qcow2'));
    expect(dev.format).toBe('raw');
    expect(dev.backing).toBeNull();
    const b = Buffer.alloc(4);
    await dev.read(b, 0);
    expect(b.toString('latin1')).toBe('QFI\xfb');
    await dev.close();
  });

  it('refuses unknown incompatible feature bits with a coded error', async () => {
    await createImage(p('inc.qcow2'), { format: 'qcow2', size: 1 << 20 });
    const fd = fs.openSync(p('inc.qcow2'), 'r+');
    fs.writeSync(fd, Buffer.from([0, 0, 0, 0, 0, 0, 1, 0]), 0, 8, 72); // bit 8
    fs.closeSync(fd);
    await expect(ring.open(p('inc.qcow2'), { format: 'qcow2' })).rejects.toMatchObject({ code: 'ERR_QCOW2_INCOMPATIBLE_FEATURE' });
  });

  it('refuses backing chains that loop or are too deep', async () => {
    fs.writeFileSync(p('leaf.raw'), Buffer.alloc(65536));
    let prev = 'leaf.raw';
    let fmt: 'raw' | 'qcow2' = 'raw';
    for (let i = 0; i < 17; i++) {
      await createImage(p(`deep${i}.qcow2`), { format: 'qcow2', backing: prev, backingFormat: fmt });
      prev = `deep${i}.qcow2`;
      fmt = 'qcow2';
    }
    await expect(ring.open(p('deep16.qcow2'), { format: 'qcow2' })).rejects.toMatchObject({ code: 'ERR_QCOW2_BACKING_TOO_DEEP' });
    const ok = await ring.open(p('deep10.qcow2'), { format: 'qcow2' });
    await ok.close();
    await createImage(p('loopA.qcow2'), { format: 'qcow2', size: 65536 });
    await createImage(p('loopB.qcow2'), { format: 'qcow2', backing: 'loopA.qcow2', backingFormat: 'qcow2' });
    expect(qemuImg('rebase', '-u', '-f', 'qcow2', '-b', 'loopB.qcow2', '-F', 'qcow2', p('loopA.qcow2')).status).toBe(0);
    await expect(ring.open(p('loopB.qcow2'), { format: 'qcow2' })).rejects.toMatchObject({ code: 'ERR_QCOW2_BACKING_LOOP' });
  });

  it('refuses to map clusters smaller than a page, and options that do not apply', async () => {
    await createImage(p('m.qcow2'), { format: 'qcow2', size: 1 << 20, clusterSize: 512 });
    const dev = await ring.open(p('m.qcow2'), { format: 'qcow2' });
    await expect(dev.map()).rejects.toMatchObject({ code: 'ERR_NOT_SUPPORTED' });
    await dev.close();
    await expect(ring.open(p('m.qcow2'), { format: 'qcow2', create: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(ring.open(p('m.qcow2'), { format: 'vmdk' as 'raw' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});
