// Workers terminated at random moments with 1,000 writes each in flight, from
// allocAligned, BufferPool, Buffer.alloc and mapped memory, on io_uring,
// libaio, threads and mmap: no crash, no fd or mapping left, and every block
// on disk exactly what some writer wrote (never freed memory). 4 workers × 50
// rounds, in a child process so a crash fails this test; once on each
// completion path (uv-poll, and the waiter thread Bun and Deno use).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

it.each(['uv-poll', 'thread'])('4 workers × 1,000 in-flight writes terminated at random moments, 50 rounds (completions: %s)', (completions) => {
  const script = path.join(__dirname, 'fixtures', 'termination-soak.js');
  const r = spawnSync(process.execPath, [script, t.dir, '50', '20261202', '1000'], {
    encoding: 'utf8', timeout: 170_000, env: { ...process.env, BLOCKRING_COMPLETIONS: completions },
  });
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    ok: boolean; fdsBefore: number; fdsAfter: number; leaked: string[]; otherNew: string[]; mappingsAfter: number; written: number;
  };
  expect(out.ok).toBe(true);
  expect(out.leaked).toEqual([]); // device files, io_uring, eventfd, epoll
  if (out.otherNew.length) console.log(`new fds not blockring's: ${out.otherNew.join(', ')}`);
  expect(out.mappingsAfter).toBe(0);
  expect(out.written).toBeGreaterThan(0);
}, 180_000);
