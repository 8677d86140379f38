// `blockring vhost-user-blk IMAGE --socket PATH`: serves until SIGTERM,
// then removes its socket and exits 0.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { pattern, withFrontend } from './helpers/vhost-frontend';
import { tempDir } from './helpers/tmp';

const CLI = path.join(__dirname, '..', 'dist', 'lib', 'cli', 'main.js');
const t = tempDir('blockring-vhost-cli-');
afterAll(() => t.cleanup());

describe('blockring vhost-user-blk', () => {
  it('serves an image on two queues until SIGTERM', async () => {
    const image = path.join(t.dir, 'disk.img');
    const socket = path.join(t.dir, 'cli.sock');
    fs.writeFileSync(image, Buffer.alloc(4 << 20));
    const child = spawn(process.execPath, [CLI, 'vhost-user-blk', image, '--socket', socket, '--num-queues', '2']);
    let err = '';
    child.stderr.setEncoding('utf8');
    const ready = new Promise<void>((resolve) => child.stderr.on('data', (d: string) => {
      err += d;
      if (err.includes('serving')) resolve();
    }));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await ready;
    await withFrontend(socket, ['--queues', '2'], async (f) => {
      expect(await f.cmd('write 1 64 8192 11')).toBe('status 0');
      expect(await f.cmd('flush 0')).toBe('status 0');
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(fs.existsSync(socket)).toBe(false);
    expect(fs.readFileSync(image).subarray(64 * 512, 64 * 512 + 8192).equals(pattern(64 * 512, 8192, 11))).toBe(true);
  });

  it('usage errors exit 2; an unknown format is refused', async () => {
    const run = (args: string[]) => new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, [CLI, 'vhost-user-blk', ...args]);
      let err = '';
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('exit', (code) => resolve({ code, err }));
    });
    expect((await run([])).code).toBe(2);
    const bad = await run([path.join(t.dir, 'x.img'), '--socket', path.join(t.dir, 's'), '--format', 'vmdk']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('ERR_NOT_SUPPORTED');
  });
});
