// The `completions` option: 'uv-poll' or 'thread' chosen explicitly, through
// $BLOCKRING_COMPLETIONS, or by 'auto' ('uv-poll' under Node); bad values are
// refused before native code runs; an idle ring on either path never holds
// the process open, and a busy one keeps it alive until its requests finish.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Ring, type CompletionsMode } from '../dist/lib/index.js';
import { tempDir } from './helpers/tmp';

const INDEX = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
const t = tempDir();
afterAll(() => t.cleanup());

function child(script: string, env: Record<string, string> = {}): string {
  const e = { ...process.env, ...env };
  if (!('BLOCKRING_COMPLETIONS' in env)) delete e.BLOCKRING_COMPLETIONS;
  return execFileSync(process.execPath, ['-e', script], { env: e, encoding: 'utf8', timeout: 30_000 }).trim();
}

describe('completions option', () => {
  it("'auto' is 'uv-poll' under Node; the option and $BLOCKRING_COMPLETIONS choose", () => {
    const show = `const { Ring } = require(${JSON.stringify(INDEX)}); const r = new Ring(); console.log(r.completions); r.close();`;
    expect(child(show)).toBe('uv-poll');
    expect(child(show, { BLOCKRING_COMPLETIONS: 'thread' })).toBe('thread');
    expect(child(show, { BLOCKRING_COMPLETIONS: 'uv-poll' })).toBe('uv-poll');
    const r = new Ring({ completions: 'thread' });
    expect(r.completions).toBe('thread');
    void r.close();
  });

  it('refuses unknown modes and non-strings with TypeErrors', () => {
    expect(() => new Ring({ completions: 'epoll' as CompletionsMode })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => new Ring({ completions: 1 as unknown as CompletionsMode })).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(child(`try { new (require(${JSON.stringify(INDEX)}).Ring)(); } catch (e) { console.log(e.code); }`,
      { BLOCKRING_COMPLETIONS: 'bogus' })).toBe('ERR_INVALID_ARG_VALUE');
  });

  for (const mode of ['uv-poll', 'thread'] as const) {
    it(`${mode}: a busy ring keeps the process alive until its requests finish; an idle one never holds it`, () => {
      const file = path.join(t.dir, `${mode}.img`);
      fs.writeFileSync(file, Buffer.alloc(1 << 20, 0x3c));
      // Nothing else keeps the loop alive: the reads complete only if the
      // busy ring holds it; the process ends only if the idle ring lets go
      // (the ring is neither closed nor collected).
      const script = `
        const { Ring } = require(${JSON.stringify(INDEX)});
        const ring = new Ring({ completions: ${JSON.stringify(mode)}, engine: 'threads', threads: 1 });
        globalThis.keep = ring;
        ring.open(${JSON.stringify(file)}).then(async (dev) => {
          let sum = 0;
          for (let i = 0; i < 64; i++) {
            const b = Buffer.alloc(4096);
            await dev.read(b, i * 4096);
            sum += b[4095];
          }
          console.log(ring.completions, sum);
        });`;
      expect(child(script)).toBe(`${mode} ${64 * 0x3c}`);
    });
  }
});
