import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh directory under the OS temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'blockring-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export { rng } from './rng.mjs';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Prints why a test is skipped (so CI logs say it), and returns whether to skip. */
export function skipUnless(cond: boolean, reason: string): boolean {
  if (!cond) console.log(`skipped: ${reason}`);
  return !cond;
}
