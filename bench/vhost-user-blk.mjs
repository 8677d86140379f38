// vhost-user-blk backends head to head, without a guest (TCG would cap both
// at a few thousand IOPS): the host-side frontend test/helpers/vhost-frontend.c
// maps guest RAM from a memfd, fills a virtqueue with 4 KiB random reads at
// depth 32, kicks and reaps the used ring. Against blockring's backend
// (`blockring vhost-user-blk`) and qemu-storage-daemon's vhost-user-blk export
// of the same file, each in its own process, rounds interleaved with the
// starting contender alternating. Ratios are medians of per-round ratios.
//
//   flock /tmp/blockring-bench.lock node bench/vhost-user-blk.mjs [--rounds 5] [--seconds 3] [--buffered]
//
// Default O_DIRECT on both sides (QEMU's cache=none); --buffered serves from
// the page cache (per-request overhead only).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SIZE = 256 << 20;
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args[i + 1];
};
const rounds = Number(opt('--rounds', '5'));
const seconds = Number(opt('--seconds', '3'));
const buffered = args.includes('--buffered');
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blockring-vhost-bench-'));
const file = path.join(dir, 'bench.img');
const frontend = path.join(dir, 'vhost-frontend');
execFileSync('gcc', ['-O2', '-o', frontend, path.join(root, 'test', 'helpers', 'vhost-frontend.c')]);
{
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < SIZE; off += chunk.length) fs.writeSync(fd, chunk.fill(off >>> 20), 0, chunk.length, off);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

const contenders = {
  blockring: (sock) => [process.execPath, [path.join(root, 'dist', 'lib', 'cli', 'main.js'), 'vhost-user-blk', file,
    '--socket', sock, ...(buffered ? [] : ['--direct'])]],
  'qemu-storage-daemon': (sock) => ['qemu-storage-daemon', [
    '--blockdev', `driver=file,filename=${file},node-name=disk,cache.direct=${buffered ? 'off' : 'on'},aio=${buffered ? 'threads' : 'io_uring'}`,
    '--export', `type=vhost-user-blk,id=exp,node-name=disk,addr.type=unix,addr.path=${sock},writable=off`]],
};

async function measure(name) {
  const sock = path.join(dir, `${name}.sock`);
  fs.rmSync(sock, { force: true });
  const [cmd, argv] = contenders[name](sock);
  const server = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
  const out = execFileSync(frontend, [sock], { input: `bench 0 32 ${seconds * 1000} 4096 ${SIZE / 512}\nquit\n` }).toString();
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  const m = /iops (\d+)/.exec(out);
  if (!m) throw new Error(`${name}: ${out}`);
  return Number(m[1]);
}

const names = Object.keys(contenders);
const results = Object.fromEntries(names.map((n) => [n, []]));
const ratios = [];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...names].reverse() : names;
  for (const n of order) results[n].push(await measure(n));
  ratios.push(results.blockring[r] / results['qemu-storage-daemon'][r]);
  console.log(`round ${r + 1}: ${names.map((n) => `${n} ${results[n][r]}`).join(', ')}, ratio ${ratios[r].toFixed(3)}`);
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`4 KiB random reads, depth 32, ${buffered ? 'page cache' : 'O_DIRECT'}: blockring ${median(results.blockring)} IOPS, ` +
  `qemu-storage-daemon ${median(results['qemu-storage-daemon'])} IOPS, ratio ${median(ratios).toFixed(3)}× ` +
  `(per round ${ratios.map((x) => x.toFixed(2)).join(' ')})`);
fs.rmSync(dir, { recursive: true, force: true });
