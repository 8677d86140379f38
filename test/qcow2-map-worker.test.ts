import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { check, qemuImg } from './helpers/qemu';
import { tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');
const CS = 64 << 10;

// Write faults taken on worker threads (two workers, each its own overlay,
// storing at once) copy up exactly as on the main thread. In a child process,
// so a crash fails this test rather than the runner.
describe('qcow2 map: write faults on worker threads', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());

  it('copies up clusters stored to from two workers at once', () => {
    const base = path.join(t.dir, 'base.raw');
    const data = Buffer.alloc(4 << 20, 0x11);
    fs.writeFileSync(base, data);
    const ovs = [0, 1].map((k) => path.join(t.dir, `w${k}.qcow2`));
    for (const ov of ovs) expect(qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', ov).status).toBe(0);
    const script = `
      const { Worker } = require('node:worker_threads');
      require(${JSON.stringify(lib)});
      const src = \`
        const { Ring } = require(${JSON.stringify(lib)});
        const { workerData, parentPort } = require('node:worker_threads');
        (async () => {
          const ring = new Ring();
          const dev = await ring.open(workerData.ov, { format: 'qcow2' });
          const region = await dev.map();
          const b = region.buffer;
          for (let c = 0; c < 32; c++) b.fill(workerData.k + 2, c * 2 * ${CS} + 1000, c * 2 * ${CS} + 9000);
          await region.sync();
          await dev.close();
          await ring.close();
          parentPort.postMessage('ok');
        })().catch((e) => parentPort.postMessage(String(e)));
      \`;
      const ovs = ${JSON.stringify(ovs)};
      Promise.all(ovs.map((ov, k) => new Promise((res) => {
        const w = new Worker(src, { eval: true, workerData: { ov, k } });
        w.once('message', res);
      }))).then((r) => { console.log(r.join(',')); process.exit(0); });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.stdout.trim()).toBe('ok,ok');
    for (let k = 0; k < 2; k++) {
      const want = Buffer.from(data);
      for (let c = 0; c < 32; c++) want.fill(k + 2, c * 2 * CS + 1000, c * 2 * CS + 9000);
      const p = path.join(t.dir, `want${k}.raw`);
      fs.writeFileSync(p, want);
      expect(qemuImg('compare', '-f', 'qcow2', '-F', 'raw', ovs[k]!, p).out).toContain('Images are identical');
      expect(check(ovs[k]!).status).toBe(0);
    }
  }, 60_000);
});
