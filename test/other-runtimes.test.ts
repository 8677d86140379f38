// The conformance checks under real Bun and Deno (the npm packages' binaries):
// their libuv emulation cannot poll (Bun aborts in uv_poll_init, Deno's
// uv_poll_start polls once), so rings there pick the waiter-thread
// completion path on their own. Each runtime runs every core and lifecycle
// check (GC, worker termination) on io_uring, buffered and O_DIRECT.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { expect, it } from 'vitest';

import { CORE_CHECKS, LIFECYCLE_CHECKS } from './helpers/core-checks.mjs';
import { skipUnless, tempDir } from './helpers/tmp';

const CHECKS = path.join(__dirname, 'helpers', 'core-checks.mjs');

function binary(pkg: string, file: string): string | null {
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
  } catch {
    return null;
  }
}

const RUNTIMES = [
  { name: 'Bun', bin: binary('@oven/bun-linux-x64', 'bin/bun'), args: [] as string[] },
  { name: 'Deno', bin: binary('@deno/linux-x64-glibc', 'deno'), args: ['run', '-A', '--v8-flags=--expose-gc'] },
];

for (const rt of RUNTIMES) {
  it.skipIf(skipUnless(rt.bin !== null && process.arch === 'x64', `${rt.name} binary (x64 npm package) not installed`))(
    `${rt.name}: every conformance check passes on io_uring, completions on the waiter thread`,
    () => {
      const t = tempDir();
      try {
        const env = { ...process.env };
        delete env.BLOCKRING_COMPLETIONS; // the runtime's own default is under test
        const out = execFileSync(
          rt.bin as string,
          [...rt.args, CHECKS, '--engine', 'io_uring', '--expect', 'io_uring', '--dir', t.dir, '--lifecycle'],
          { env, encoding: 'utf8', timeout: 120_000 },
        );
        const result = JSON.parse(out.trim().split('\n').pop() as string) as { completions: string; ran: string[] };
        expect(result.completions).toBe('thread');
        const names = [...CORE_CHECKS, ...LIFECYCLE_CHECKS].map(([n]) => n);
        expect(result.ran).toEqual([...names, ...names.map((n) => `${n} (O_DIRECT)`)]);
      } finally {
        t.cleanup();
      }
    },
  );
}
