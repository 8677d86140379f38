// Copying into read-only mapped memory is EFAULT, never a crash: the mmap
// engine's reads and region.read() use the guarded copy, which catches the
// SIGSEGV as it catches SIGBUS. Run in a child process so a crash fails here.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { runChild } from './helpers/child';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it('a read into a read-only region is EFAULT on the mmap engine and in region.read()', () => {
  const file = path.join(t.dir, 'disk.img');
  const r = runChild(`
    const ring = new lib.Ring({ engine: 'mmap' });
    const dev = await ring.open(${JSON.stringify(file)}, { create: true, size: 1 << 20 });
    await dev.write(Buffer.alloc(8192, 7), 0);
    const ro = dev.map({ offset: 65536, length: 65536, readOnly: true });
    const engineRead = await dev.read(ro.buffer.subarray(0, 4096), 0).then((n) => n, (e) => [e.name, e.code, e.errno]);
    const src = dev.map({ length: 65536 });
    let regionRead;
    try { regionRead = src.read(ro.buffer.subarray(0, 4096), 0); } catch (e) { regionRead = [e.name, e.code, e.errno]; }
    // The process still works: a normal read afterwards.
    const ok = await dev.read(Buffer.alloc(4096), 0);
    await dev.close();
    await ring.close();
    return { engineRead, regionRead, ok };
  `);
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  expect(r.out).toEqual({
    engineRead: ['BlockIoError', 'EFAULT', -14],
    regionRead: ['BlockIoError', 'EFAULT', -14],
    ok: 4096,
  });
});
