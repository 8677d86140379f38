// A source build must work on distributions whose kernel headers are old
// (Ubuntu 22.04 ships 5.15, RHEL 9 5.14): every native source compiles, with
// the release flags and -Werror, against Linux 5.4's io_uring UAPI header and
// a linux/stat.h without what 5.5+ added, shadowing the system headers.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

const ROOT = path.join(__dirname, '..');
const NODE_INCLUDE = path.join(path.dirname(process.execPath), '..', 'include', 'node');
const ADDON_API = (require('node-addon-api') as { include_dir: string }).include_dir.replace(/^"|"$/g, '');

// struct statx fields and flags from 5.5 on (stx_mnt_id 5.8, stx_dio_* 6.1, ...).
const STAT_NEWER = /stx_mnt_id|stx_dio_|stx_subvol|stx_atomic|STATX_(MNT_ID|DIOALIGN|SUBVOL|WRITE_ATOMIC|DIO_READ_ALIGN)|STATX_ATTR_(MOUNT_ROOT|VERITY|DAX|WRITE_ATOMIC)/;

function sources(): string[] {
  const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  return gyp.targets[0]!.sources.map((s) => path.join(ROOT, s));
}

function compile(include: string, file: string, extra: string[] = []): Promise<{ code: number; stderr: string }> {
  const args = ['-fsyntax-only', '-std=c++17', '-fexceptions', '-Wall', '-Wextra', '-Werror',
    '-DNAPI_VERSION=8', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
    '-isystem', include, '-I', NODE_INCLUDE, '-I', ADDON_API, ...extra, file];
  return new Promise((resolve) => {
    const p = spawn('g++', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('source build on Linux 5.4 UAPI headers', () => {
  let t: ReturnType<typeof tempDir>;
  let include: string;
  beforeAll(() => {
    t = tempDir();
    include = path.join(t.dir, 'include');
    fs.mkdirSync(path.join(include, 'linux'), { recursive: true });
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'uapi-5.4', 'linux', 'io_uring.h'), path.join(include, 'linux', 'io_uring.h'));
    const stat = fs.readFileSync('/usr/include/linux/stat.h', 'utf8').split('\n').filter((l) => !STAT_NEWER.test(l));
    fs.writeFileSync(path.join(include, 'linux', 'stat.h'), stat.join('\n'));
  });
  afterAll(() => t.cleanup());

  it('the shadow headers really lack the newer definitions', async () => {
    const probe = path.join(t.dir, 'probe.cc');
    const uses = [
      '#include <linux/io_uring.h>\nint x = IORING_OP_URING_CMD;',
      '#include <linux/io_uring.h>\nint x = IORING_OP_READ;',
      '#include <linux/io_uring.h>\nunsigned x = IORING_SETUP_SUBMIT_ALL;',
      '#include <linux/io_uring.h>\nvoid f(io_uring_sqe* s) { s->cmd_op = 0; }',
      '#include <linux/stat.h>\nunsigned x = STATX_DIOALIGN;',
      '#include <sys/stat.h>\nvoid f(struct statx* s) { s->stx_dio_mem_align = 0; }',
    ];
    for (const src of uses) {
      fs.writeFileSync(probe, `#define _GNU_SOURCE 1\n${src}\n`);
      const r = await compile(include, probe);
      expect(r.code, src).not.toBe(0);
      // ...and the same line compiles against the system headers, so it is the shadow that broke it.
      const sys = await compile(path.join(t.dir, 'no-shadow'), probe);
      expect(sys.code, `${src}\n${sys.stderr}`).toBe(0);
    }
  });

  it('every native source compiles with -Werror against them', async () => {
    execFileSync('g++', ['--version']);
    const files = sources();
    const failures: string[] = [];
    // Two at a time: the machine has two cores.
    for (let i = 0; i < files.length; i += 2) {
      const batch = await Promise.all(files.slice(i, i + 2).map(async (f) => ({ f, r: await compile(include, f) })));
      for (const { f, r } of batch) if (r.code !== 0) failures.push(`${path.relative(ROOT, f)}:\n${r.stderr}`);
    }
    expect(failures.join('\n')).toBe('');
  }, 180_000);
});
