// Shared setup of the lifetime-* tests (each file is named for the crash or
// leak it guards): one temp dir per file, the exit-inflight/worker-io
// fixtures, and this process's open fds (ring fds: io_uring and eventfd).
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll } from 'vitest';

import { tempDir } from './tmp';

export const fixtures = path.join(__dirname, '..', 'fixtures');

/** A temp dir made before this file's tests and removed after them; call at the top level. */
export function fileTempDir(): { readonly dir: string } {
  let t: ReturnType<typeof tempDir> | undefined;
  beforeAll(() => {
    t = tempDir();
  });
  afterAll(() => t?.cleanup());
  return {
    get dir(): string {
      if (!t) throw new Error('fileTempDir() used outside a test');
      return t.dir;
    },
  };
}

/** Where each of this process's fds points. */
export function fdTargets(): string[] {
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

/** This process's io_uring and eventfd fds. */
export const ringFds = (): number => fdTargets().filter((l) => /io_uring|eventfd/.test(l)).length;
