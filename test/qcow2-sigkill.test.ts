// A writer process is SIGKILLed in the middle of a write storm on a qcow2
// overlay, 20 times: each time the image passes `qemu-img check` (leaked
// clusters allowed, no errors) and holds every write acknowledged before the
// last flush that completed.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { qemuImg } from './helpers/qemu';
import { rng, tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

const SIZE = 16 << 20;

it('survives SIGKILL mid-storm 20 times', async () => {
  const rand = rng(Number(process.env.BLOCKRING_SEED ?? 0x5161));
  const base = path.join(t.dir, 'base.raw');
  fs.writeFileSync(base, Buffer.alloc(SIZE, 0xaa));
  const child = path.join(__dirname, 'fixtures', 'qcow2-storm.js');
  let withData = 0;
  for (let round = 0; round < 20; round++) {
    const img = path.join(t.dir, `o${round}.qcow2`);
    const journal = path.join(t.dir, `j${round}`);
    fs.writeFileSync(journal, '');
    // Alternate 64 KiB and 4 KiB clusters.
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `cluster_size=${round % 2 ? 4096 : 65536}`, '-b', base, '-F', 'raw', img);
    const proc = spawn(process.execPath, [child, img, journal, String(round + 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    const ready = new Promise<void>((r) => proc.stdout.once('data', () => r()));
    const first = await Promise.race([ready.then(() => 'ready'), exited.then((code) => `exited early (${code})`)]);
    if (first !== 'ready') throw new Error(`round ${round}: writer ${first}`);
    await new Promise((r) => setTimeout(r, 50 + rand() * 300));
    proc.kill('SIGKILL');
    expect(await exited).toBeNull(); // killed, not finished
    const c = qemuImg('check', '-f', 'qcow2', img);
    if (c.status !== 0 && c.status !== 3) throw new Error(`round ${round}: ${c.out}`);
    const raw = path.join(t.dir, 'r.raw');
    fs.rmSync(raw, { force: true });
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', img, raw]);
    const data = fs.readFileSync(raw);
    const lines = fs.readFileSync(journal, 'utf8').split('\n').filter(Boolean);
    if (lines.length) withData++;
    for (const l of lines) {
      const [off, len, byte] = l.split(' ').map(Number) as [number, number, number];
      if (!data.subarray(off, off + len).every((x) => x === byte)) throw new Error(`round ${round}: lost flushed write ${l}`);
    }
    fs.rmSync(img);
  }
  expect(withData).toBeGreaterThan(10);
}, 240_000);
