import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { check, qemuImg } from './helpers/qemu';
import { isRoot, skipUnless, tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');
const CS = 64 << 10;

// What a mapped qcow2 overlay does when a write cannot be copied up: a coded
// error where there is a call to return it from (region.write, region.sync,
// map), death by SIGSEGV for a bare store (never a silently lost write), and
// an image that qemu-img check still finds clean. Each case runs in a child.
describe('qcow2 map: failures are reported, never lost', () => {
  let t: ReturnType<typeof tempDir>;
  let base: string;
  let ov: string;
  beforeEach(() => {
    t = tempDir();
    base = path.join(t.dir, 'base.raw');
    ov = path.join(t.dir, 'ov.qcow2');
    fs.writeFileSync(base, Buffer.alloc(2 << 20, 0x42));
    expect(qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', ov).status).toBe(0);
  });
  afterEach(() => t.cleanup());

  // Runs body (async, with ring/dev/region/log in scope) in a child; returns its signal and log lines.
  function child(body: string, open = '{ format: "qcow2" }', map = '{}'): { signal: string | null; status: number | null; lines: string[] } {
    const script = `
      const { Ring } = require(${JSON.stringify(lib)});
      const fs = require('node:fs');
      const log = (s) => fs.writeSync(1, s + '\\n');
      const code = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
      (async () => {
        const ring = new Ring();
        const dev = await ring.open(${JSON.stringify(ov)}, ${open});
        const region = await dev.map(${map});
        ${body}
        process.exit(0);
      })().catch((e) => { log('rejected ' + e.code); process.exit(3); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    return { signal: r.signal, status: r.status, lines: r.stdout.trim().split('\n') };
  }

  it('read-only device: the region is readOnly, region.write refuses, a store is a plain SIGSEGV', () => {
    const r = child(`
      log(String(region.readOnly));
      log(code(() => region.write(Buffer.alloc(1), 0)));
      log(String(region.buffer[5]));
      region.buffer[5] = 1;
      log('stored');`, '{ format: "qcow2", readOnly: true }');
    expect(r.lines).toEqual(['true', 'ERR_READ_ONLY', '66']);
    expect(r.signal).toBe('SIGSEGV');
    expect(check(ov).status).toBe(0);
  });

  it('empty pool: region.write throws ENOSPC, sync reports it, refills; a bare store past the pool dies', () => {
    const r = child(`
      log(code(() => region.write(Buffer.alloc(3 * ${CS}, 7), 0)));
      log(await region.sync().then(() => 'ok', (e) => e.code));
      log(code(() => region.write(Buffer.alloc(${CS}, 8), ${CS})));
      await region.sync();
      await dev.close();
      log('closed');`, undefined, '{ reserve: 1 }');
    expect(r.lines).toEqual(['ENOSPC', 'ENOSPC', 'ok', 'closed']);
    expect(r.status).toBe(0);
    // The one reserved cluster went to whichever cluster the copy touched
    // first: cluster 0 for a forward memmove, cluster 2 for a backward one
    // (ASan's interceptor copies backward). Either way exactly that cluster
    // holds 7s, and the later write's 8s are in cluster 1.
    const matches = [0, 2].filter((first) => {
      const want = Buffer.alloc(2 << 20, 0x42);
      want.fill(7, first * CS, (first + 1) * CS);
      want.fill(8, CS, 2 * CS);
      fs.writeFileSync(path.join(t.dir, 'want.raw'), want);
      return qemuImg('compare', '-f', 'qcow2', '-F', 'raw', ov, path.join(t.dir, 'want.raw')).out.includes('Images are identical');
    });
    expect(matches).toHaveLength(1);
    expect(check(ov).status).toBe(0);

    const d = child(`
      for (let c = 0; c < 8; c++) region.buffer[c * ${CS}] = 1;
      log('stored all');`, undefined, '{ reserve: 4 }');
    expect(d.signal).toBe('SIGSEGV');
    expect(d.lines).not.toContain('stored all');
  });

  it('after close: copied-up clusters stay writable, region.write refuses, a first store elsewhere dies', () => {
    const r = child(`
      region.buffer[10] = 9;
      await dev.close();
      region.buffer[11] = 9;
      log(code(() => region.write(Buffer.alloc(1), 0)));
      log(await region.sync().then(() => 'ok', (e) => e.code));
      log(String(region.buffer[${CS} + 1]));
      region.buffer[${CS} + 1] = 9;
      log('stored');`);
    expect(r.lines).toEqual(['ERR_DEVICE_CLOSED', 'ok', '66']);
    expect(r.signal).toBe('SIGSEGV');
    const want = Buffer.alloc(2 << 20, 0x42);
    want[10] = 9;
    want[11] = 9;
    fs.writeFileSync(path.join(t.dir, 'want.raw'), want);
    expect(qemuImg('compare', '-f', 'qcow2', '-F', 'raw', ov, path.join(t.dir, 'want.raw')).out).toContain('Images are identical');
    expect(check(ov).status).toBe(0);
  });

  it('base truncated under the mapping: region.read and a copy-up through region.write fail with EIO', () => {
    const r = child(`
      fs.truncateSync(${JSON.stringify(base)}, ${CS});
      log(code(() => region.read(Buffer.alloc(10), 4 * ${CS})));
      log(code(() => region.write(Buffer.alloc(10), 4 * ${CS})));
      log(await region.sync().then(() => 'ok', (e) => e.code));
      region.buffer[5] = 1; // cluster 0 is still inside the base
      await region.sync();
      await dev.close();
      log('closed');`);
    expect(r.lines).toEqual(['EIO', 'EIO', 'EIO', 'closed']);
    const chk = check(ov);
    expect(chk.status).toBe(0);
    expect(chk.report.leaks ?? 0).toBe(0);
  });

  it('no space for the reservation: map() rejects with ENOSPC and the image stays clean', (ctx) => {
    if (skipUnless(isRoot, 'mounting a small tmpfs needs root')) return ctx.skip();
    const mnt = path.join(t.dir, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
    try {
      ov = path.join(mnt, 'ov.qcow2');
      expect(qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', ov).status).toBe(0);
      const r = child('log("mapped");', undefined, '{ reserve: 64 }');
      expect(r.lines).toEqual(['rejected ENOSPC']);
      expect(check(ov).status).toBe(0);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
