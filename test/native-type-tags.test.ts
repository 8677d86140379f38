// Every native entry point checks that its receiver is the kind of native
// object it expects (napi_type_tag, native/binding/type_tags.h): calling one
// handle's method on another kind of handle, on a plain object, or on an
// object that only inherits the prototype is a coded TypeError
// (ERR_INVALID_ARG_TYPE), never a C++ object read as another type. Under
// Node, V8 refuses a wrong receiver of a prototype method itself ("Illegal
// invocation", before the addon runs); accessors and every entry point
// under Bun and Deno reach the addon's check.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { expect, it } from 'vitest';

import { type WrongReceiverCall, wrongReceivers } from './helpers/type-tag-checks.mjs';
import { skipUnless, tempDir } from './helpers/tmp';

const CHECKS = path.join(__dirname, 'helpers', 'type-tag-checks.mjs');
const CODED = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };

function binary(pkg: string, file: string): string | null {
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
  } catch {
    return null;
  }
}

// 5 kinds x their entry points x 6 wrong receivers each.
function expectAllRefused(calls: WrongReceiverCall[], v8Receiver: boolean): number {
  expect(calls.length).toBeGreaterThan(4 * 5 * 5);
  let coded = 0;
  for (const c of calls) {
    const at = `${c.entry} on ${c.receiver}`;
    expect(c.refusal, at).not.toBeNull();
    const r = c.refusal as NonNullable<WrongReceiverCall['refusal']>;
    if (v8Receiver && r.code === undefined) {
      expect({ name: r.name, message: r.message }, at).toEqual({ name: 'TypeError', message: 'Illegal invocation' });
    } else {
      expect({ name: r.name, code: r.code }, at).toEqual(CODED);
      expect(r.message, at).toMatch(/^expected a \w+ handle$/);
      coded++;
    }
  }
  return coded;
}

it('Node: every method and accessor refuses the wrong receiver with a TypeError; the addon codes those V8 lets through', () => {
  const t = tempDir();
  try {
    const r = wrongReceivers(t.dir);
    const coded = expectAllRefused(r.calls, true);
    // The accessors (engine, depth, completions, engineInfo, unmapped) reach the addon under Node.
    expect(coded).toBeGreaterThanOrEqual(4 * 5 + 5);
    expect(r.sane).toBe(true);
    expect(r.mappingOk).toBe(true);
  } finally {
    t.cleanup();
  }
});

// Under scripts/sanitize.sh (libasan preloaded), ASan cannot find Bun's thread
// stack bounds when the addon throws a C++ exception (CHECK failed in
// __asan_handle_no_return); Bun runs this without ASan in the ordinary suite.
const asan = /libasan/.test(process.env.LD_PRELOAD ?? '');

const RUNTIMES = [
  { name: 'Bun', bin: asan ? null : binary('@oven/bun-linux-x64', 'bin/bun'), args: [] as string[] },
  { name: 'Deno', bin: binary('@deno/linux-x64-glibc', 'deno'), args: ['run', '-A'] },
];

for (const rt of RUNTIMES) {
  it.skipIf(skipUnless(rt.bin !== null && process.arch === 'x64', `${rt.name} binary (x64 npm package) not installed${asan ? ', or ASan preloaded' : ''}`))(
    `${rt.name}: every method and accessor refuses the wrong receiver with the addon's coded TypeError`,
    () => {
      const t = tempDir();
      try {
        const out = execFileSync(rt.bin as string, [...rt.args, CHECKS, '--dir', t.dir], { encoding: 'utf8', timeout: 60_000 });
        const r = JSON.parse(out.trim().split('\n').pop() as string) as ReturnType<typeof wrongReceivers>;
        expect(expectAllRefused(r.calls, false)).toBe(r.calls.length);
        expect(r.sane).toBe(true);
        expect(r.mappingOk).toBe(true);
      } finally {
        t.cleanup();
      }
    },
  );
}
