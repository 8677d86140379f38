// A worker that opened and closed a device must not close, when it exits, an
// fd number the main thread has reused since: device fds are the addon's own,
// never in node:fs's per-worker fd tracking (trackUnmanagedFds).
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');
let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it("a worker's exit leaves fds reused after its device closed alone", async () => {
  const disk = path.join(t.dir, 'disk.img');
  const other = path.join(t.dir, 'other.txt');
  fs.writeFileSync(other, 'main thread data');
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Ring } = require(workerData.lib);
    (async () => {
      const ring = new Ring({ engine: 'threads' });
      const dev = await ring.open(workerData.disk, { create: true, size: 65536 });
      await dev.write(Buffer.alloc(4096, 1), 0);
      await dev.close();
      await ring.close();
      parentPort.postMessage('closed');
      parentPort.once('message', () => process.exit(0));
    })();`;
  for (let round = 0; round < 5; round++) {
    const w = new Worker(src, { eval: true, workerData: { lib, disk } });
    const [msg] = (await once(w, 'message')) as [string];
    expect(msg).toBe('closed');
    // The lowest free numbers, among them the one the worker's device had.
    const fds = Array.from({ length: 8 }, () => fs.openSync(other, 'r'));
    w.postMessage('exit');
    await once(w, 'exit');
    for (const fd of fds) {
      const buf = Buffer.alloc(16);
      expect(fs.readSync(fd, buf, 0, 16, 0)).toBe(16);
      expect(buf.toString()).toBe('main thread data');
      fs.closeSync(fd);
    }
  }
});
