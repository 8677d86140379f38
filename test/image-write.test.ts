// blockring image write SOURCE TARGET [--verify]: raw and .gz images onto a
// loop device (O_DIRECT, exclusive) and onto a file; verify; a clear refusal
// when the target is too small or in use; the progress bar on a TTY.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { isRoot, skipUnless, tempDir } from './helpers/tmp';

const CLI = path.join(__dirname, '..', 'dist', 'lib', 'cli', 'main.js');
const blockring = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

let t: ReturnType<typeof tempDir>;
let image: Buffer;
let raw: string;
let gz: string;
beforeAll(() => {
  t = tempDir();
  image = crypto.randomBytes(5 << 20);
  raw = path.join(t.dir, 'disk.img');
  gz = path.join(t.dir, 'disk.img.gz');
  fs.writeFileSync(raw, image);
  fs.writeFileSync(gz, zlib.gzipSync(image, { level: 1 }));
});
afterAll(() => t.cleanup());

describe.skipIf(skipUnless(isRoot, 'loop devices need root'))('onto a loop device', () => {
  let loop: string;
  let backing: string;
  beforeAll(() => {
    backing = path.join(t.dir, 'loop-backing');
    fs.writeFileSync(backing, Buffer.alloc(8 << 20, 0xee));
    loop = execFileSync('losetup', ['--find', '--show', '--sector-size', '512', backing], { encoding: 'utf8' }).trim();
  });
  afterAll(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
  });
  const onDevice = (n: number): Buffer => {
    const fd = fs.openSync(loop, 'r');
    try {
      const b = Buffer.alloc(n);
      fs.readSync(fd, b, 0, n, 0);
      return b;
    } finally {
      fs.closeSync(fd);
    }
  };

  it('writes a raw image with --verify', () => {
    const r = blockring(['image', 'write', raw, loop, '--verify']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`wrote ${image.length} bytes .* to ${loop}`));
    expect(r.stdout).toMatch(/verified 5242880 bytes \(sha256 [0-9a-f]{64}\)/);
    expect(onDevice(image.length).equals(image)).toBe(true);
  });

  it('writes a .gz image, decompressing it', () => {
    execFileSync('blkdiscard', ['-z', loop]); // zero it: the previous test wrote the same bytes
    const r = blockring(['image', 'write', gz, loop, '--verify', '--depth', '64']);
    expect(r.status).toBe(0);
    expect(onDevice(image.length).equals(image)).toBe(true);
    // The device past the image is untouched by the write.
    const fd = fs.openSync(loop, 'r');
    const tail = Buffer.alloc(4096);
    fs.readSync(fd, tail, 0, 4096, image.length);
    fs.closeSync(fd);
    expect(tail.equals(Buffer.alloc(4096))).toBe(true);
  });

  it('refuses a target that is too small before writing, raw and .gz', () => {
    const big = crypto.randomBytes(9 << 20);
    const bigRaw = path.join(t.dir, 'big.img');
    fs.writeFileSync(bigRaw, big);
    fs.writeFileSync(`${bigRaw}.gz`, zlib.gzipSync(big, { level: 1 }));
    execFileSync('blkdiscard', ['-z', loop]);
    for (const src of [bigRaw, `${bigRaw}.gz`]) {
      const r = blockring(['image', 'write', src, loop]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${loop} is too small: ${src} is ${9 << 20} bytes (9.0 MiB), ${loop} holds ${8 << 20} bytes (8.0 MiB)`);
      expect(r.stderr).toContain('ERR_TARGET_TOO_SMALL');
    }
    expect(onDevice(4096).equals(Buffer.alloc(4096))).toBe(true); // nothing written
  });

  it('refuses a device another opener holds exclusively (EBUSY)', async () => {
    const ring = new Ring();
    const held = await ring.open(loop, { exclusive: true });
    const r = blockring(['image', 'write', raw, loop]);
    await held.close();
    await ring.close();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('EBUSY');
  });
});

it('writes onto a file it creates, and draws a progress bar with rate and ETA on a TTY', () => {
  const target = path.join(t.dir, 'copy.img');
  // script(1) gives the command a pseudo-terminal.
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} image write ${JSON.stringify(gz)} ${JSON.stringify(target)} --verify`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
  expect(r.status).toBe(0);
  expect(fs.readFileSync(target).equals(image)).toBe(true);
  expect(r.stdout).toMatch(/writing \[#+-*\] +\d+% [\d.]+ MiB [\d.]+ MiB\/s ETA \d+:\d\d/);
  expect(r.stdout).toMatch(/verifying \[#{30}\] 100%/);
  // Not on a TTY: no progress line.
  fs.rmSync(target);
  const plain = blockring(['image', 'write', raw, target]);
  expect(plain.status).toBe(0);
  expect(plain.stderr).toBe('');
  expect(fs.readFileSync(target).equals(image)).toBe(true);
});
