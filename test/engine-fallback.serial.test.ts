// `auto` where io_uring is missing or forbidden: kernel.io_uring_disabled,
// a seccomp filter like Docker's, and an exhausted fs.aio-max-nr. Each case
// runs the conformance core checks in a child process (the sysctl window
// covers only the child's ring creation).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ring } from '../dist/lib/index.js';
import { isRoot, tempDir } from './helpers/tmp';

const run = promisify(execFile);
const CHECKS = path.join(__dirname, 'helpers', 'core-checks.mjs');
const SECCOMP_SRC = path.join(__dirname, 'helpers', 'seccomp-deny.c');
const IO_URING_DISABLED = '/proc/sys/kernel/io_uring_disabled';
const AIO_MAX_NR = '/proc/sys/fs/aio-max-nr';

interface ChildReport {
  engineInfo: { name: string; requested: string; fallbackReason: string | null };
  libaioError?: { code: string; syscall: string; message: string };
  ran: string[];
}

let t: ReturnType<typeof tempDir>;
const saved = new Map<string, string>();

async function checksInChild(prefix: string[], args: string[]): Promise<ChildReport> {
  const [cmd, ...rest] = [...prefix, process.execPath, '--expose-gc', CHECKS, '--dir', t.dir, ...args];
  try {
    const { stdout } = await run(cmd!, rest, { maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as ChildReport;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`child failed: ${err.stderr || err.message}`);
  }
}

beforeAll(() => {
  t = tempDir();
  for (const file of [IO_URING_DISABLED, AIO_MAX_NR]) {
    if (fs.existsSync(file)) saved.set(file, fs.readFileSync(file, 'utf8'));
  }
});
afterAll(() => {
  // The child restores these itself; this covers a child killed inside its window.
  for (const [file, value] of saved) {
    if (isRoot && fs.readFileSync(file, 'utf8') !== value) fs.writeFileSync(file, value);
  }
  t?.cleanup();
});

describe('engine selection', () => {
  it('auto picks io_uring when it works, and says it did not fall back', (ctx) => {
    const ring = new Ring({ engine: 'auto' });
    try {
      if (ring.engine !== 'io_uring') {
        console.log(`skipped: io_uring is unavailable here (${ring.engineInfo.fallbackReason})`);
        ctx.skip();
      }
      expect(ring.engineInfo).toEqual({ name: 'io_uring', requested: 'auto', fallbackReason: null, features: expect.any(Array) });
    } finally {
      void ring.close();
    }
  });

  it('BLOCKRING_ENGINE overrides the default, the option overrides both', async () => {
    const before = process.env.BLOCKRING_ENGINE;
    process.env.BLOCKRING_ENGINE = 'threads';
    try {
      const a = new Ring();
      const b = new Ring({ engine: 'libaio' });
      expect(a.engineInfo).toEqual({ name: 'threads', requested: 'threads', fallbackReason: null, features: [] });
      expect(b.engine).toBe('libaio');
      await Promise.all([a.close(), b.close()]);
    } finally {
      if (before === undefined) delete process.env.BLOCKRING_ENGINE;
      else process.env.BLOCKRING_ENGINE = before;
    }
  });

  it('rejects unknown engines and bad thread counts', () => {
    expect(() => new Ring({ engine: 'spdk' as 'auto' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Ring({ engine: 'threads', threads: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Ring({ engine: 'threads', threads: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

describe('auto falls back', () => {
  let helper: string | null = null;
  let noHelper = '';

  beforeAll(async () => {
    helper = path.join(t.dir, 'seccomp-deny');
    try {
      await run('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', helper, SECCOMP_SRC]);
    } catch (e) {
      noHelper = `cannot compile the seccomp helper with cc: ${(e as Error).message}`;
      helper = null;
    }
  });

  it('with kernel.io_uring_disabled=2: libaio (buffered I/O on its threads), core checks pass', async (ctx) => {
    if (!isRoot || !saved.has(IO_URING_DISABLED)) {
      console.log(`skipped: needs root and ${IO_URING_DISABLED} (Linux 6.6+)`);
      ctx.skip();
    }
    const report = await checksInChild([], ['--engine', 'auto', '--expect', 'libaio', '--disable-io-uring']);
    expect(report.engineInfo.name).toBe('libaio');
    expect(report.engineInfo.requested).toBe('auto');
    expect(report.engineInfo.fallbackReason).toMatch(/^io_uring: io_uring_setup failed \(Operation not permitted\)/);
    expect(report.ran).toHaveLength(14);
    expect(fs.readFileSync(IO_URING_DISABLED, 'utf8')).toBe(saved.get(IO_URING_DISABLED));
  });

  it('under a seccomp filter denying io_uring_setup: libaio, every check passes', async (ctx) => {
    if (!helper) {
      console.log(`skipped: ${noHelper}`);
      ctx.skip();
    }
    const report = await checksInChild([helper!], ['--engine', 'auto', '--expect', 'libaio', '--lifecycle']);
    expect(report.engineInfo.fallbackReason).toMatch(/io_uring_setup failed \(Operation not permitted\)/);
    expect(report.ran).toHaveLength(20);
  });

  it('under a seccomp filter denying io_uring_setup and io_setup: threads', async (ctx) => {
    if (!helper) {
      console.log(`skipped: ${noHelper}`);
      ctx.skip();
    }
    const report = await checksInChild([helper!, '--deny-aio'], ['--engine', 'auto', '--expect', 'threads']);
    expect(report.engineInfo.fallbackReason).toMatch(/io_uring: .*; libaio: io_setup failed \(Operation not permitted\)/);
    expect(report.ran).toHaveLength(14);
  });

  it('with fs.aio-max-nr exhausted: libaio names the limit, auto moves on to threads', async (ctx) => {
    if (!isRoot || !saved.has(IO_URING_DISABLED)) {
      console.log(`skipped: needs root and ${IO_URING_DISABLED} (Linux 6.6+)`);
      ctx.skip();
    }
    const report = await checksInChild([], ['--engine', 'auto', '--expect', 'threads', '--disable-io-uring', '--exhaust-aio']);
    expect(report.libaioError).toMatchObject({ code: 'EAGAIN', syscall: 'io_setup' });
    expect(report.libaioError!.message).toContain('fs.aio-max-nr');
    expect(report.engineInfo.fallbackReason).toMatch(/libaio: .*fs\.aio-max-nr is exhausted/);
    expect(report.ran).toHaveLength(14);
    expect(fs.readFileSync(AIO_MAX_NR, 'utf8')).toBe(saved.get(AIO_MAX_NR));
  });
});
