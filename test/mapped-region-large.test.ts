// A region larger than the largest Buffer (buffer.constants.MAX_LENGTH, 4 GiB
// on Node 20) has no zero-copy buffer: a RangeError, not a crash, and
// read()/write() still work on it. In a child process so a crash fails here.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { runChild } from './helpers/child';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it('region.buffer over a mapping larger than 4 GiB throws ERR_OUT_OF_RANGE', () => {
  const file = path.join(t.dir, 'big.img');
  fs.writeFileSync(file, ''); // sparse: no space used
  const r = runChild(`
    const ring = new lib.Ring({ engine: 'threads' });
    const dev = await ring.open(${JSON.stringify(file)}, { size: 2 ** 32 + 4096 });
    const region = dev.map();
    let buffer;
    try { buffer = region.buffer.length; } catch (e) { buffer = [e.name, e.code]; }
    region.write(Buffer.from('tail'), 2 ** 32);
    const back = Buffer.alloc(4);
    region.read(back, 2 ** 32);
    region.unmap();
    await ring.close();
    return { buffer, back: back.toString() };
  `);
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  expect(r.out).toEqual({ buffer: ['RangeError', 'ERR_OUT_OF_RANGE'], back: 'tail' });
});
