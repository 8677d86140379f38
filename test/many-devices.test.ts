// No fixed device limit: 10,000 devices on one ring, each written and read back.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

import { isRoot, skipUnless, tempDir } from './helpers/tmp';

const COUNT = 10_000;

function nofileHard(): number {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === 'unlimited' ? Infinity : Number(hard);
}

const canRaise = isRoot || nofileHard() >= COUNT + 200;

it.skipIf(skipUnless(canRaise, 'needs root (or a hard RLIMIT_NOFILE above 10,200) to open 10,000 devices'))('10,000 devices on one ring are each written and read back (RLIMIT_NOFILE raised)', () => {
  const t = tempDir();
  try {
    // Raise RLIMIT_NOFILE for the child (root may raise the hard limit too).
    const limit = String(COUNT + 1000);
    const out = execFileSync('prlimit', [`--nofile=${limit}:${limit}`, '--', process.execPath,
      path.join(__dirname, 'fixtures', 'many-devices.js'), t.dir, String(COUNT)], { encoding: 'utf8', timeout: 120_000 });
    const r = JSON.parse(out) as { ok: number; handles: number; left: number };
    expect(r.ok).toBe(COUNT);
    expect(r.handles).toBe(COUNT);
    expect(r.left).toBeLessThan(100); // every device fd closed with the ring
  } finally {
    t.cleanup();
  }
});
