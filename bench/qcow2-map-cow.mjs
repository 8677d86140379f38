// Mapped copy-on-write on qcow2 overlays of a raw base (README "Mapped
// copy-on-write"), three measurements, contenders alternating round by round
// in one run so load from elsewhere hits them alike (medians reported):
//  1. first write to a page still served by the base: a store through
//     region.buffer (write fault + cluster copy-up + MAP_FIXED, and its share
//     of recording the L2 entry at the next sync) vs `await dev.write()` of
//     the same 4 KiB (device copy-up: read base, write cluster, L2 entry);
//     4 KiB and 64 KiB clusters;
//  2. sequential read throughput, 1 MiB at a time into one buffer: a mapped
//     qcow2 overlay's region.buffer vs the mmap engine reading the raw base;
//  3. total Pss of the base's pages when 4 processes each map their own
//     overlay of a 1 GiB base and read all of it.
//
//   npm run rebuild && flock /tmp/blockring-bench.lock node bench/qcow2-map-cow.mjs [--pages 2048] [--rounds 3] [--read-mib 256] [--pss-gib 1]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

import { Ring } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '2048' },
    rounds: { type: 'string', default: '3' },
    'read-mib': { type: 'string', default: '256' },
    'pss-gib': { type: 'string', default: '1' },
  },
});
const PAGES = Number(values.pages);
const ROUNDS = Number(values.rounds);
const READ = Number(values['read-mib']) << 20;
const PSS = Number(values['pss-gib']) * (1 << 30);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-mapcow-'));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const now = () => Number(process.hrtime.bigint()) / 1e3; // µs

function overlay(name, base, cs) {
  const p = path.join(dir, name);
  fs.rmSync(p, { force: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cs}`, '-b', base, '-F', 'raw', p]);
  return p;
}

try {
  const ring = new Ring();
  const base = path.join(dir, 'base.raw');
  const bsize = Math.max(READ, PAGES * 65536);
  execFileSync('dd', ['if=/dev/urandom', `of=${base}`, 'bs=1M', `count=${bsize >> 20}`, 'status=none']);
  fs.readFileSync(base); // cached

  // 1. first-write cost
  for (const cs of [4096, 65536]) {
    const fault = [];
    const reserve = [];
    const write = [];
    for (let round = 0; round < ROUNDS; round++) {
      {
        const dev = await ring.open(overlay('f.qcow2', base, cs), { format: 'qcow2' });
        const tm = now();
        const region = await dev.map({ reserve: PAGES + 16 });
        reserve.push((now() - tm) / PAGES); // refcounts + fallocate, paid before the faults
        const b = region.buffer;
        const t0 = now();
        for (let i = 0; i < PAGES; i++) b[i * cs] = 1; // one page per cluster, every one a first write
        await region.sync();
        fault.push((now() - t0) / PAGES);
        await dev.close();
      }
      {
        const dev = await ring.open(overlay('w.qcow2', base, cs), { format: 'qcow2' });
        const page = Buffer.alloc(4096, 1);
        const t0 = now();
        for (let i = 0; i < PAGES; i++) await dev.write(page, i * cs);
        await dev.flush();
        write.push((now() - t0) / PAGES);
        await dev.close();
      }
    }
    console.log(`first write, ${cs >> 10} KiB clusters, ${PAGES} pages: store fault ${median(fault).toFixed(1)} µs/page (rounds ${fault.map((x) => x.toFixed(1)).join(', ')}; ` +
      `+ ${median(reserve).toFixed(1)} µs/page reserving in map()), ` +
      `dev.write ${median(write).toFixed(1)} µs/page (rounds ${write.map((x) => x.toFixed(1)).join(', ')}), ratio ${(median(write) / median(fault)).toFixed(2)}x`);
  }

  // 2. read throughput
  {
    const dev = await ring.open(overlay('r.qcow2', base, 65536), { format: 'qcow2' });
    const region = await dev.map();
    const b = region.buffer;
    const mring = new Ring({ engine: 'mmap' });
    const raw = await mring.open(base, { readOnly: true });
    const dst = Buffer.alloc(1 << 20);
    const mapped = [];
    const engine = [];
    b.copy(dst, 0, 0, dst.length);
    for (let round = 0; round < ROUNDS + 1; round++) {
      let t0 = now();
      for (let off = 0; off < READ; off += dst.length) b.copy(dst, 0, off, off + dst.length);
      if (round) mapped.push(READ / (now() - t0) / 1e3); // GB/s
      t0 = now();
      for (let off = 0; off < READ; off += dst.length) await raw.read(dst, off);
      if (round) engine.push(READ / (now() - t0) / 1e3);
    }
    console.log(`sequential read ${READ >> 20} MiB, 1 MiB chunks: qcow2 region.buffer ${median(mapped).toFixed(2)} GB/s (rounds ${mapped.map((x) => x.toFixed(2)).join(', ')}), ` +
      `mmap engine on raw ${median(engine).toFixed(2)} GB/s (rounds ${engine.map((x) => x.toFixed(2)).join(', ')})`);
    await raw.close();
    await mring.close();
    await dev.close();
  }
  await ring.close();

  // 3. Pss of a shared base
  {
    const big = path.join(dir, 'big.raw');
    fs.rmSync(base);
    execFileSync('truncate', ['-s', String(PSS), big]);
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', `count=${PSS >> 20}`, 'conv=notrunc', 'status=none']);
    const lib = path.resolve(import.meta.dirname, '../dist/lib/index.js');
    const kids = [];
    for (let k = 0; k < 4; k++) {
      const ov = overlay(`p${k}.qcow2`, big, 65536);
      const src = `const { Ring } = require(${JSON.stringify(lib)});
        (async () => { const ring = new Ring(); const dev = await ring.open(${JSON.stringify(ov)}, { format: 'qcow2' });
          const region = await dev.map(); const b = region.buffer; let s = 0;
          for (let i = 0; i < b.length; i += 4096) s += b[i];
          console.log('ready ' + s); process.stdin.once('data', () => process.exit(0)); })();`;
      const c = spawn(process.execPath, ['-e', src], { stdio: ['pipe', 'pipe', 'inherit'] });
      kids.push({ c, lines: readline.createInterface({ input: c.stdout })[Symbol.asyncIterator]() });
    }
    for (const k of kids) await k.lines.next();
    let rss = 0;
    let pss = 0;
    const real = fs.realpathSync(big);
    for (const { c } of kids) {
      let mine = false;
      for (const line of fs.readFileSync(`/proc/${c.pid}/smaps`, 'utf8').split('\n')) {
        if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) mine = line.endsWith(` ${real}`);
        else if (mine && line.startsWith('Rss:')) rss += Number(line.split(/\s+/)[1]) * 1024;
        else if (mine && line.startsWith('Pss:')) pss += Number(line.split(/\s+/)[1]) * 1024;
      }
    }
    for (const { c } of kids) c.stdin.write('x');
    console.log(`${PSS / (1 << 30)} GiB base read fully by 4 processes: total Rss ${(rss / (1 << 30)).toFixed(2)} GiB, total Pss ${(pss / (1 << 30)).toFixed(2)} GiB`);
    await Promise.all(kids.map(({ c }) => new Promise((r) => c.once('exit', r))));
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
