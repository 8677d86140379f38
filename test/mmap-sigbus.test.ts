import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BlockIoError, Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');

// A file truncated under a mapping raises SIGBUS on access past its new end.
// The native copies (mmap engine, region.read/write) turn that into EIO on
// the request; a SIGBUS outside them still gets the default action.
describe('SIGBUS from a file truncated under a mapping', () => {
  let t: ReturnType<typeof tempDir>;
  let file: string;

  beforeEach(() => {
    t = tempDir();
    file = path.join(t.dir, 'shrinking.img');
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 0x11));
  });
  afterEach(() => t.cleanup());

  it('fails the mmap engine request with EIO, then serves the new size', async () => {
    const ring = new Ring({ engine: 'mmap', depth: 8 });
    const dev = await ring.open(file);
    const r = Buffer.alloc(4096);
    expect(await dev.read(r, 512 * 1024)).toBe(4096); // maps the whole megabyte
    fs.truncateSync(file, 8192); // as another process would

    const err = await dev.read(r, 512 * 1024).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockIoError);
    expect(['EIO', 'EFAULT']).toContain((err as BlockIoError).code);
    expect((err as BlockIoError).offset).toBe(512 * 1024);
    const werr = await dev.write(Buffer.alloc(4096, 1), 600 * 1024).catch((e: unknown) => e);
    // The failed read made the engine re-read the size: this write extends the file again.
    expect(werr).toBe(4096);

    fs.truncateSync(file, 8192);
    const [bad, good] = await ring.submit([
      { op: 'read', dev, buffer: Buffer.alloc(4096), offset: 600 * 1024 },
      { op: 'read', dev, buffer: Buffer.alloc(4096), offset: 0 },
    ]);
    expect(bad!.error?.code).toMatch(/^(EIO|EFAULT)$/);
    expect(good!.error).toBeUndefined();
    expect(good!.bytes).toBe(4096);
    expect(await dev.read(r, 600 * 1024)).toBe(0); // now past the end: a short read, as pread
    await ring.close();
  });

  it('fails region.read()/write() with EIO', async () => {
    const ring = new Ring({ depth: 8 });
    const dev = await ring.open(file);
    const region = dev.map();
    fs.truncateSync(file, 4096);
    expect(() => region.read(Buffer.alloc(16), 100000)).toThrow(BlockIoError);
    expect(() => region.write(Buffer.alloc(16), 100000)).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(region.read(Buffer.alloc(16), 0)).toBe(16);
    region.unmap();
    await ring.close();
  });

  it('leaves a SIGBUS outside a guarded copy to the default action', () => {
    // The child installs the handler (a guarded copy), then touches a
    // truncated page through region.buffer: that must still kill it.
    const script = `
      const fs = require('node:fs');
      const { Ring } = require(${JSON.stringify(lib)});
      (async () => {
        const ring = new Ring();
        const dev = await ring.open(${JSON.stringify(file)});
        const region = dev.map();
        region.read(Buffer.alloc(1), 0);
        fs.truncateSync(${JSON.stringify(file)}, 0);
        process.stdout.write('touching\\n');
        console.log(region.buffer[500000]);
      })();`;
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(res.stdout).toBe('touching\n');
    if (res.signal !== 'SIGBUS') {
      // Under the sanitizer build the previous handler is AddressSanitizer's, which reports and exits.
      expect(res.stderr).toMatch(/AddressSanitizer: BUS/);
      expect(res.status).not.toBe(0);
    }
  });
});
