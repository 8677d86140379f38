// Workers that load blockring while the main thread never does: when such a
// worker exits, Node unloads the addon, so nothing of ours (the eventfd
// poll's close callback) may still be pending in the worker's loop. Runs in
// a child process so this file's own thread has not loaded the addon either.
// On both completion paths (the waiter thread's function is finalized by the
// worker's teardown too).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

const run = promisify(execFile);
const INDEX = path.join(__dirname, '..', 'dist', 'lib', 'index.js');

const CHILD = `
const { Worker } = require('node:worker_threads');
const { once } = require('node:events');
const fs = require('node:fs');
const [index, file] = process.argv.slice(1);
fs.writeFileSync(file, Buffer.alloc(64 * 4096));
const body = (mode) => \`
  const { parentPort, workerData } = require('node:worker_threads');
  const { Ring } = require(workerData.index);
  (async () => {
    const ring = new Ring({ engine: workerData.engine, depth: 16 });
    const dev = await ring.open(workerData.file);
    const ps = [];
    for (let i = 0; i < 64; i++) ps.push(dev.read(Buffer.alloc(4096), i * 4096));
    parentPort.postMessage(ring.engine + ' ' + ring.completions);
    \${mode === 'close' ? 'await Promise.all(ps); await ring.close();' : ''}
    \${mode === 'exit' ? 'await Promise.all(ps); process.exit(0);' : ''}
    \${mode === 'terminate' ? 'await new Promise(() => setInterval(() => {}, 1000));' : ''}
  })();\`;
(async () => {
  for (const engine of ['io_uring', 'libaio', 'threads']) {
    for (const mode of ['terminate', 'close', 'exit', 'terminate']) {
      const w = new Worker(body(mode), { eval: true, workerData: { index, file, engine } });
      const [name] = await once(w, 'message');
      if (name !== engine + ' ' + process.env.BLOCKRING_COMPLETIONS) throw new Error('engine ' + name);
      if (mode === 'terminate') await w.terminate();
      else await once(w, 'exit');
    }
  }
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
`;

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it.each(['uv-poll', 'thread'])('workers on every engine exit, close or are terminated without crashing the process (completions: %s)', async (completions) => {
  const { stdout } = await run(process.execPath, ['-e', CHILD, INDEX, path.join(t.dir, `w-${completions}.img`)], {
    env: { ...process.env, BLOCKRING_COMPLETIONS: completions },
  });
  expect(stdout.trim()).toBe('ok');
});
