import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

const lib = path.resolve(__dirname, '../dist/lib/index.js');
const N = 4;
const SIZE = 8 << 20;

/** Rss and Pss (kB) of the mapping of file in /proc/<pid>/smaps. */
function smapsOf(pid: number, file: string): { rss: number; pss: number } | null {
  const lines = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l) && l.endsWith(` ${file}`));
  if (start < 0) return null;
  const field = (name: string): number => {
    for (let i = start + 1; i < lines.length && !/^[0-9a-f]+-[0-9a-f]+ /.test(lines[i]!); i++) {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`).exec(lines[i]!);
      if (m) return Number(m[1]);
    }
    return NaN;
  };
  return { rss: field('Rss'), pss: field('Pss') };
}

// Processes that map one base image read-only share its page-cache pages:
// each is charged Rss for all of them but only Pss = Rss / N.
describe('shared base image pages', () => {
  let t: ReturnType<typeof tempDir>;
  let file: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    t = tempDir();
    file = path.join(t.dir, 'base.img');
    const data = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4096) data.writeUInt32LE(i, i);
    fs.writeFileSync(file, data);
  });
  afterEach(() => {
    for (const c of children) c.kill();
    children.length = 0;
    t.cleanup();
  });

  it(`${N} processes mapping one base read-only each have Pss ≈ Rss/${N}`, async () => {
    // Each child maps the base, reads every page through the zero-copy
    // buffer, reports, and holds the mapping until its stdin closes.
    const script = `
      const { Ring } = require(${JSON.stringify(lib)});
      (async () => {
        const ring = new Ring();
        const dev = await ring.open(${JSON.stringify(file)}, { readOnly: true });
        const region = dev.map({ readOnly: true });
        globalThis.region = region; // unreachable regions are unmapped by the GC
        const buf = region.buffer;
        let ok = 0;
        for (let i = 0; i < buf.length; i += 4096) ok += buf.readUInt32LE(i) === i ? 1 : 0;
        console.log('ready ' + ok);
        process.stdin.resume();
        process.stdin.on('end', () => process.exit(0));
      })();`;
    const ready = [];
    for (let i = 0; i < N; i++) {
      const c = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(c);
      ready.push(new Promise<string>((resolve, reject) => {
        readline.createInterface({ input: c.stdout! }).once('line', resolve);
        c.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      }));
    }
    const lines = await Promise.all(ready);
    for (const l of lines) expect(l).toBe(`ready ${SIZE / 4096}`);

    for (const c of children) {
      const m = smapsOf(c.pid!, file);
      expect(m).not.toBeNull();
      expect(m!.rss).toBe(SIZE / 1024);
      // Every page is mapped by all N: Pss = Rss / N (allow 10% for rounding).
      expect(Math.abs(m!.pss - m!.rss / N)).toBeLessThanOrEqual((m!.rss / N) * 0.1);
    }
    for (const c of children) c.stdin!.end();
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  });
});
