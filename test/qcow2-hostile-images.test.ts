// Corrupted qcow2 headers and tables (fast-check): opening, reading,
// writing, mapping and closing give coded errors or mark the image corrupt
// (read-only), never a crash, an uncoded error, a read outside the file or
// a leaked fd. Run under the sanitizer too (npm run test:sanitize).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
let pristine: Buffer;
const CS = 4096;

beforeAll(() => {
  t = tempDir();
  const base = path.join(t.dir, 'base.raw');
  fs.writeFileSync(base, Buffer.alloc(1 << 20, 0xaa));
  const img = path.join(t.dir, 'seed.qcow2');
  // Small clusters so L1, L2 and refcount tables sit within the first pages.
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${CS}`, '-b', base, '-F', 'raw', img, '1M']);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 8k', '-c', 'write -z 64k 8k', '-c', 'write -P 0x22 500k 4k', img]);
  pristine = fs.readFileSync(img);
});
afterAll(() => t.cleanup());

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

function expectCoded(e: unknown): void {
  const err = e as { code?: unknown; name?: string };
  if (typeof err.code !== 'string' || !/^(ERR_|E[A-Z]+$)/.test(err.code)) throw e;
}

interface Mutation {
  region: 'header' | 'ext' | 'tables' | 'anywhere';
  at: number;
  bytes: readonly number[];
}

const mutation = fc.record({
  region: fc.constantFrom('header', 'ext', 'tables', 'anywhere') as fc.Arbitrary<Mutation['region']>,
  at: fc.nat(),
  bytes: fc.oneof(
    fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
    // Whole big-endian words that are plausible-but-wrong offsets and sizes.
    fc.constantFrom(
      [0, 0, 0, 0, 0, 0, 0, 0], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x80, 0, 0, 0, 0, 0, 0x10, 0],
      [0, 0, 0, 0, 0, 0, 0, 1], [0x80, 0, 0, 0, 0, 0, 0, 0], [0x40, 0, 0, 0, 0, 0, 0x20, 0],
      [0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0x10, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0x7f, 0xff, 0xf0, 0],
    ),
  ),
});

function apply(img: Buffer, m: Mutation): void {
  const span = m.region === 'header' ? 112 : m.region === 'ext' ? 512 : m.region === 'tables' ? Math.min(img.length, 8 * CS) : img.length;
  const base = m.region === 'tables' ? CS : 0;
  let at = base + (m.at % Math.max(1, span - base));
  if (m.bytes.length === 8) at -= at % 8; // table entries are aligned words
  for (let i = 0; i < m.bytes.length && at + i < img.length; i++) img[at + i] = m.bytes[i]!;
}

it('survives 400 corrupted images with coded errors and no fd leak', async () => {
  const ring = new Ring({ depth: 32 });
  const before = openFds();
  let opened = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), async (muts, readOnly) => {
      const img = Buffer.from(pristine);
      for (const m of muts) apply(img, m);
      const file = path.join(t.dir, 'case.qcow2');
      fs.writeFileSync(file, img);
      let dev;
      try {
        dev = await ring.open(file, { format: 'qcow2', readOnly, cacheSize: 4 * CS });
      } catch (e) {
        expectCoded(e);
        refused++;
        return;
      }
      opened++;
      const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
        try {
          await fn();
        } catch (e) {
          expectCoded(e);
        }
      };
      const span = Math.min(dev.size, 1 << 20);
      await attempt(() => dev.read(Buffer.alloc(span), 0));
      await attempt(() => dev.read(Buffer.alloc(4096), Math.max(0, dev.size - 4096)));
      await attempt(() => dev.allocation(0, span));
      if (!dev.readOnly) {
        await attempt(() => dev.write(Buffer.alloc(5000, 0x33), 3000));
        await attempt(() => dev.write(Buffer.alloc(4096, 0x44), Math.max(0, Math.min(dev.size, 1 << 20) - 4096)));
        await attempt(() => dev.discard(0, Math.min(dev.size, 2 * CS)));
        await attempt(() => dev.flush());
      }
      await attempt(() => dev.close());
    }),
    { numRuns: 400, seed: Number(process.env.BLOCKRING_SEED ?? 14) },
  );
  await ring.close();
  expect(openFds()).toBe(before);
  expect(opened).toBeGreaterThan(20);
  expect(refused).toBeGreaterThan(20);
}, 120_000);

it('refuses tables past the end of the file, overlapping the header, and absurd sizes', async () => {
  const ring = new Ring();
  const cases: Array<[string, (b: Buffer) => void]> = [
    ['L1 past the end', (b) => b.writeUInt32BE(0x7fff, 40)],
    ['L1 on the header', (b) => { b.writeUInt32BE(0, 40); b.writeUInt32BE(0, 44); }],
    ['refcount table past the end', (b) => b.writeUInt32BE(0x7fff, 48)],
    ['absurd L1 size', (b) => b.writeUInt32BE(0x7fffffff, 36)],
    ['absurd virtual size', (b) => b.writeUInt32BE(0x7fffffff, 24)],
    ['cluster bits 30', (b) => b.writeUInt32BE(30, 20)],
    ['encrypted', (b) => b.writeUInt32BE(1, 32)],
  ];
  for (const [name, corrupt] of cases) {
    const img = Buffer.from(pristine);
    corrupt(img);
    const file = path.join(t.dir, 'fixed.qcow2');
    fs.writeFileSync(file, img);
    const err = await ring.open(file, { format: 'qcow2' }).then(() => null, (e: { code?: string }) => e);
    expect({ name, code: err?.code }).toMatchObject({ name, code: expect.stringMatching(/^ERR_QCOW2_/) });
  }
  await ring.close();
});
