import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');

// Terminating a worker that holds regions, their buffers and an msync in
// flight: the process survives and every mapping is released. Run in a
// child process so that a crash fails this test instead of the runner.
describe('mapped region: worker termination', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());

  it('releases regions and in-flight syncs of a terminated worker', () => {
    const file = path.join(t.dir, 'worker.img');
    const script = `
      const fs = require('node:fs');
      const { Worker } = require('node:worker_threads');
      require(${JSON.stringify(lib)}); // the main thread keeps the addon loaded
      const file = ${JSON.stringify(file)};
      fs.writeFileSync(file, Buffer.alloc(32 << 20));
      const src = \`
        const { Ring } = require(${JSON.stringify(lib)});
        const { parentPort } = require('node:worker_threads');
        (async () => {
          const ring = new Ring({ engine: 'mmap' });
          const dev = await ring.open(\${JSON.stringify(file)});
          globalThis.region = dev.map();
          globalThis.buf = region.buffer;
          globalThis.other = dev.map({ mode: 'private', offset: 4095, length: 3 });
          for (let round = 0; round < 3; round++) {
            buf.fill(round + 1);
            globalThis.pending = region.sync();
            await ring.submit([{ op: 'read', dev, buffer: Buffer.alloc(8), offset: 100 }]);
          }
          parentPort.postMessage(buf[12345]);
        })();\`;
      (async () => {
        for (let i = 0; i < 4; i++) {
          const w = new Worker(src, { eval: true });
          const v = await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
          await w.terminate(); // while the last msync is likely still running
          if (v !== 3) throw new Error('worker saw ' + v);
        }
        const left = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith(file));
        console.log('mappings left: ' + left.length);
      })();`;
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(res.stderr).toBe('');
    expect(res.signal).toBeNull();
    expect(res.status).toBe(0);
    expect(res.stdout.trim()).toBe('mappings left: 0');
  });
});
