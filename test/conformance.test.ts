// One suite, every engine: the behaviours in helpers/core-checks.mjs run
// unchanged on io_uring, libaio, threads and mmap, on files with and
// without O_DIRECT. A new engine is done when it passes this file.
import { afterAll, beforeAll, describe, it } from 'vitest';

import { Ring, type RingOptions } from '../dist/lib/index.js';
import { CORE_CHECKS, LIFECYCLE_CHECKS, SHARED_RING_OPTIONS } from './helpers/core-checks.mjs';
import { tempDir } from './helpers/tmp';

// The mmap engine serves requests from the page cache by design, so it runs
// the suite on buffered files only.
const ENGINES = ['io_uring', 'libaio', 'threads', 'mmap'] as const;

for (const engine of ENGINES) {
  for (const direct of engine === 'mmap' ? [false] : [false, true]) {
    describe(`${engine}${direct ? ' with O_DIRECT' : ''}`, () => {
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
        makeRing: (options: RingOptions) => new Ring({ ...options, engine }),
      };

      beforeAll(() => {
        t = tempDir();
        ring = new Ring({ engine, ...SHARED_RING_OPTIONS });
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
