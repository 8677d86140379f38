// One suite, every engine: the behaviours in helpers/core-checks.mjs run
// unchanged on io_uring, libaio, threads and mmap, on files with and
// without O_DIRECT. A new engine is done when it passes this file. io_uring
// runs it a second time with completions handed over by the waiter thread
// (the path Bun and Deno use); BLOCKRING_COMPLETIONS=thread runs every row on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring, type CompletionsMode, type RingOptions } from '../dist/lib/index.js';
import { CORE_CHECKS, LIFECYCLE_CHECKS, SHARED_RING_OPTIONS } from './helpers/core-checks.mjs';
import { tempDir } from './helpers/tmp';

// The mmap engine serves requests from the page cache by design, so it runs
// the suite on buffered files only.
const ROWS: { engine: string; completions?: CompletionsMode }[] = [
  { engine: 'io_uring' },
  { engine: 'io_uring', completions: 'thread' },
  { engine: 'libaio' },
  { engine: 'threads' },
  { engine: 'mmap' },
];

for (const { engine, completions } of ROWS) {
  for (const direct of engine === 'mmap' ? [false] : [false, true]) {
    const via = completions ? ` (completions: ${completions})` : '';
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
        makeRing: (options: RingOptions) => new Ring({ completions, ...options, engine } as RingOptions),
      };

      beforeAll(() => {
        t = tempDir();
        ring = new Ring({ engine, completions, ...SHARED_RING_OPTIONS } as RingOptions);
        if (completions) expect(ring.completions).toBe(completions);
      });
      afterAll(async () => {
        await ring?.close();
        t?.cleanup();
      });

      for (const [name, run] of [...CORE_CHECKS, ...LIFECYCLE_CHECKS]) {
        it(name, () => run(ctx));
      }
    });
  }
}
