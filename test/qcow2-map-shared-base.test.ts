import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { expectCheckClean, expectSameAsRaw, qemuImg } from './helpers/qemu';
import { tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');
const PAGE = 4096;
const BASE = 16 << 20;
const N = 4;

// Rss and Pss (bytes) of every mapping of file in /proc/pid/smaps.
function smapsOf(pid: number, file: string): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  let inFile = false;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.endsWith(` ${file}`);
    else if (inFile && line.startsWith('Rss:')) rss += Number(line.split(/\s+/)[1]) * 1024;
    else if (inFile && line.startsWith('Pss:')) pss += Number(line.split(/\s+/)[1]) * 1024;
  }
  return { rss, pss };
}

// The pages child k writes: 64 distinct pages, with its own bytes.
function pagesOf(k: number): number[] {
  const out: number[] = [];
  for (let i = 0; out.length < 64; i++) {
    const p = (i * 37 + k * 11) % (BASE / PAGE);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

// Four processes map their own overlay of one raw base: the base's pages are
// in memory once (Pss = Rss / 4), every first write copies a cluster up, and
// after exit each overlay holds exactly its own writes and passes qemu-img check.
describe('qcow2 map: a raw base shared by four processes', () => {
  let t: ReturnType<typeof tempDir>;
  const kids: ChildProcess[] = [];
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => {
    for (const k of kids) k.kill('SIGKILL');
    t.cleanup();
  });

  it('shares base pages, copies up on write, leaves consistent overlays', async () => {
    const base = path.join(t.dir, 'base.raw');
    const data = Buffer.alloc(BASE);
    for (let i = 0; i < BASE; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    fs.writeFileSync(base, data);
    const overlays = Array.from({ length: N }, (_, k) => path.join(t.dir, `ov${k}.qcow2`));
    for (const ov of overlays) expect(qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', ov).status).toBe(0);

    const child = (ov: string, pages: number[], k: number): string => `
      const { Ring } = require(${JSON.stringify(lib)});
      const readline = require('node:readline');
      (async () => {
        const ring = new Ring();
        const dev = await ring.open(${JSON.stringify(ov)}, { format: 'qcow2' });
        const region = await dev.map();
        const b = region.buffer;
        let sum = 0;
        for (let i = 0; i < b.length; i += 4096) sum += b[i];
        console.log('ready ' + sum);
        const rl = readline.createInterface({ input: process.stdin });
        await new Promise((r) => rl.once('line', r));
        for (const p of ${JSON.stringify(pages)}) b.fill(${k + 1} * 16 + (p & 15), p * 4096, p * 4096 + 4096);
        await region.sync();
        await dev.close();
        await ring.close();
        console.log('done');
        rl.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const lines: Array<AsyncIterator<string>> = [];
    for (let k = 0; k < N; k++) {
      const c = spawn(process.execPath, ['-e', child(overlays[k]!, pagesOf(k), k)], { stdio: ['pipe', 'pipe', 'inherit'] });
      kids.push(c);
      lines.push(readline.createInterface({ input: c.stdout! })[Symbol.asyncIterator]());
    }
    for (const l of lines) expect((await l.next()).value).toMatch(/^ready \d+$/);
    const real = fs.realpathSync(base);
    for (const c of kids) {
      const { rss, pss } = smapsOf(c.pid!, real);
      expect(rss).toBe(BASE); // every base page mapped from the base file
      expect(pss / rss).toBeGreaterThan(0.2);
      expect(pss / rss).toBeLessThan(0.3);
    }
    const exits = kids.map((c) => new Promise<number | null>((r) => c.once('exit', r)));
    for (const c of kids) c.stdin!.write('go\n');
    for (const l of lines) expect((await l.next()).value).toBe('done');
    expect(await Promise.all(exits)).toEqual([0, 0, 0, 0]);

    expect(fs.readFileSync(base).equals(data)).toBe(true);
    for (let k = 0; k < N; k++) {
      const want = Buffer.from(data);
      for (const p of pagesOf(k)) want.fill((k + 1) * 16 + (p & 15), p * PAGE, p * PAGE + PAGE);
      const expected = path.join(t.dir, `want${k}.raw`);
      fs.writeFileSync(expected, want);
      expectSameAsRaw(overlays[k]!, expected);
      expectCheckClean(overlays[k]!);
    }
  }, 60_000);
});
