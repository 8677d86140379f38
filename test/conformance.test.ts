// One suite, every engine: the behaviours in helpers/core-checks.mjs run
// unchanged on io_uring, libaio, threads and mmap, on files with and
// without O_DIRECT. A new engine is done when it passes this file. io_uring
// runs it a second time with completions handed over by the waiter thread
// (the path Bun and Deno use); BLOCKRING_COMPLETIONS=thread runs every row on it.
// Two more io_uring rows force its modes: every setup feature off
// (BLOCKRING_IO_URING=none: the ring of a pre-6.0 kernel), and the polling
// mode (pollMicros).
import os from 'node:os';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring, type CompletionsMode, type RingOptions } from '../dist/lib/index.js';
import { CORE_CHECKS, LIFECYCLE_CHECKS, SHARED_RING_OPTIONS } from './helpers/core-checks.mjs';
import { tempDir } from './helpers/tmp';

// The mmap engine serves requests from the page cache by design, so it runs
// the suite on buffered files only.
const ROWS: { engine: string; completions?: CompletionsMode; uring?: string; pollMicros?: number }[] = [
  { engine: 'io_uring' },
  { engine: 'io_uring', completions: 'thread' },
  { engine: 'io_uring', uring: 'none' },
  { engine: 'io_uring', pollMicros: 200 },
  { engine: 'libaio' },
  { engine: 'threads' },
  { engine: 'mmap' },
];

// Every io_uring setup feature is in Linux 6.6 and later.
const [major = 0, minor = 0] = os.release().split('.').map(Number);
const allFeatures = major > 6 || (major === 6 && minor >= 6);

for (const { engine, completions, uring, pollMicros } of ROWS) {
  for (const direct of engine === 'mmap' ? [false] : [false, true]) {
    const via = (completions ? ` (completions: ${completions})` : '') +
      (uring ? ` (BLOCKRING_IO_URING=${uring})` : '') + (pollMicros ? ` (pollMicros: ${pollMicros})` : '');
    describe(`${engine}${direct ? ' with O_DIRECT' : ''}${via}`, () => {
      let t: ReturnType<typeof tempDir>;
      let ring: Ring;
      const ctx = {
        engine,
        requested: engine,
        direct,
        get dir() {
          return t.dir;
        },
        get ring() {
          return ring;
        },
        makeRing: (options: RingOptions) => new Ring({ completions, pollMicros, ...options, engine } as RingOptions),
      };
      const savedUring = process.env.BLOCKRING_IO_URING;

      beforeAll(() => {
        t = tempDir();
        // Set for the whole row: rings the checks make (workers too) inherit it.
        if (uring !== undefined) process.env.BLOCKRING_IO_URING = uring;
        ring = new Ring({ engine, completions, pollMicros, ...SHARED_RING_OPTIONS } as RingOptions);
        if (completions) expect(ring.completions).toBe(completions);
        if (engine === 'io_uring' && uring === 'none') expect(ring.engineInfo.features).toEqual([]);
        else if (engine === 'io_uring' && allFeatures && savedUring === undefined) {
          expect(ring.engineInfo.features).toEqual(['single-issuer', 'defer-taskrun', 'no-sqarray', 'ring-fd', 'nowait-read']);
        }
      });
      afterAll(async () => {
        await ring?.close();
        t?.cleanup();
        if (savedUring === undefined) delete process.env.BLOCKRING_IO_URING;
        else process.env.BLOCKRING_IO_URING = savedUring;
      });

      for (const [name, run] of [...CORE_CHECKS, ...LIFECYCLE_CHECKS]) {
        it(name, () => run(ctx));
      }
    });
  }
}
