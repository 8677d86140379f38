// Every options object refuses keys it does not know, with a TypeError that
// names the nearest known key: a misspelt option must not silently do nothing.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { BufferPool, Ring, type BlockDevice } from '../dist/lib/index.js';
import { withDevice } from './helpers/device-fixture';

let dir: string;
let ring: Ring;
let dev: BlockDevice;
let file: string;
withDevice({ ring: { depth: 8 }, open: { size: 1 << 16 }, name: 'img', scope: 'all' }, (f) => {
  ({ dir, ring, dev, file } = f);
});

function refused(e: unknown, key: string, suggestion: string | null): void {
  expect(e).toBeInstanceOf(TypeError);
  expect((e as { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
  const m = (e as Error).message;
  expect(m).toContain(`${key} is not a known option`);
  if (suggestion) expect(m).toContain(`did you mean '${suggestion}'?`);
  else expect(m).not.toContain('did you mean');
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

it('new Ring() options', () => {
  refused(thrown(() => new Ring({ dept: 64 } as never)), 'options.dept', 'depth');
  refused(thrown(() => new Ring({ engine: 'null', nullEngine: { seeed: 1 } } as never)), 'options.nullEngine.seeed', 'seed');
  refused(thrown(() => new Ring({ engine: 'null', nullEngine: { faults: [{ errnum: 'EIO' }] } } as never)),
    'options.nullEngine.faults[0].errnum', 'errno');
  refused(thrown(() => new Ring({ zzzzzzzz: 1 } as never)), 'options.zzzzzzzz', null);
});

it('ring.open() options: a misspelt readOnly does not open read-write', async () => {
  const other = path.join(dir, 'never-created');
  refused(await ring.open(other, { create: true, readonly: true } as never).catch((e: unknown) => e), 'options.readonly', 'readOnly');
  expect(fs.existsSync(other)).toBe(false);
});

it('request options of every device call', async () => {
  const buf = Buffer.alloc(512);
  const cases: [string, string, Promise<unknown>][] = [
    ['options.tga', 'tag', dev.read(buf, 0, { tga: 'ordered' } as never)],
    ['options.FUA', 'fua', dev.write(buf, 0, { FUA: true } as never)],
    ['options.tag_', 'tag', dev.readv([buf], 0, { tag_: 'head' } as never)],
    ['options.fau', 'fua', dev.writev([buf], 0, { fau: true } as never)],
    ['options.metdata', 'metadata', dev.flush({ metdata: true } as never)],
    ['options.tags', 'tag', dev.discard(0, 512, { tags: 'simple' } as never)],
    ['options.unmapp', 'unmap', dev.writeZeroes(0, 512, { unmapp: true } as never)],
    ['requests[1].fau', 'fua', ring.submit([{ op: 'read', dev, buffer: buf, offset: 0 }, { op: 'write', dev, buffer: buf, offset: 0, fau: true } as never])],
  ];
  for (const [key, near, p] of cases) refused(await p.catch((e: unknown) => e), key, near);
  // Nothing was written by the refused calls.
  expect(fs.readFileSync(file).subarray(0, 512).equals(Buffer.alloc(512))).toBe(true);
});

it('map, sync, BufferPool and raw registration options', async () => {
  refused(thrown(() => dev.map({ lenght: 4096 } as never)), 'options.lenght', 'length');
  const region = dev.map({ length: 4096 });
  refused(await region.sync({ asnyc: true } as never).catch((e: unknown) => e), 'options.asnyc', 'async');
  region.unmap();
  refused(thrown(() => new BufferPool(1, 4096, { align: 4096 } as never)), 'options.align', 'alignment');
  refused(thrown(() => ring.raw.registerBuffers([Buffer.alloc(512)], { fixd: true } as never)), 'options.fixd', 'fixed');
});
